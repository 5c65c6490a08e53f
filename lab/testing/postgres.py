"""A throwaway PostgreSQL server for tests, and the ``db`` fixture over both backends.

``postgres()`` runs ``initdb`` into a temporary directory and starts the server on
127.0.0.1 with a free port and its socket in that directory; it waits for readiness
under a deadline and always stops the server and removes the directory. PostgreSQL
refuses to run as root, so as root the server runs as the ``postgres`` system user
(Debian's package creates it).

Test modules load this file as a plugin (``pytest_plugins = ["lab.testing.postgres"]``), so
one server serves the whole session. Missing binaries fail the tests (never skip): a
skipped backend would let a PostgreSQL-only bug through unnoticed.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from switchboard.data.db import Database, create_database, open_database

_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin")


class PostgresUnavailableError(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The directory holding initdb, pg_ctl, pg_isready and psql (newest version)."""
    found = shutil.which("pg_ctl")
    candidates = [Path(found).resolve().parent] if found else []
    for pattern in _SEARCH:
        paths = Path("/").glob(pattern.lstrip("/"))
        candidates += sorted(paths, key=lambda p: _version(p), reverse=True)
    for path in candidates:
        if all((path / tool).exists() for tool in ("initdb", "pg_ctl", "pg_isready", "psql")):
            return path
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl, pg_isready, psql) not found: "
        "run lab/setup.sh (it installs the postgresql package)"
    )


def _version(path: Path) -> int:
    name = path.parent.name
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class PgServer:
    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int
    user: str | None  # the system user the server runs as (None: the current one)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        subprocess.run(
            [self.bin_dir / "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qc", f'CREATE DATABASE "{name}"'],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip
        return self.url(name)

    def pg_ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args],
            user=self.user, cwd=self.socket_dir, capture_output=True, text=True,
            timeout=timeout, check=False,
        )  # fmt: skip

    def is_ready(self) -> bool:
        ready = subprocess.run(
            [self.bin_dir / "pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"],
            capture_output=True, timeout=5, check=False,
        )  # fmt: skip
        return ready.returncode == 0

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.socket_dir / "server.log").read_text().splitlines()[-20:])
        return "(no log)"


@contextlib.contextmanager
def postgres(deadline_s: float = 30.0) -> Iterator[PgServer]:
    """A running throwaway server; stopped and deleted on exit."""
    bin_dir = find_bin_dir()
    user = "postgres" if os.geteuid() == 0 else None
    tmp = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    try:
        if user:
            entry = pwd.getpwnam(user)
            os.chown(tmp, entry.pw_uid, entry.pw_gid)
        server = PgServer(bin_dir, tmp / "data", tmp, free_port(), user)
        subprocess.run(
            [bin_dir / "initdb", "-D", server.data_dir, "-U", "postgres", "--auth=trust",
             "-E", "UTF8", "--no-sync", "--no-instructions"],
            user=user, cwd=tmp, check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={server.port} "
            f"-c unix_socket_directories={tmp} -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off"
        )
        started = server.pg_ctl("-l", str(tmp / "server.log"), "-o", options, "-W", "start")
        if started.returncode != 0:
            raise PostgresUnavailableError(f"pg_ctl start failed: {started.stderr}")
        try:
            end = time.monotonic() + deadline_s
            while not server.is_ready():
                if time.monotonic() > end:
                    raise PostgresUnavailableError(
                        f"PostgreSQL not ready within {deadline_s:g} s:\n{server.log_tail()}"
                    )
                time.sleep(0.05)  # polling a deadline, not synchronisation by sleeping
            yield server
        finally:
            server.pg_ctl("-m", "immediate", "-w", "-t", "20", "stop")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        find_bin_dir()
    except PostgresUnavailableError as e:
        pytest.fail(str(e), pytrace=False)
    with postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each backend (not yet migrated)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'switchboard.db'}"
    server: PgServer = request.getfixturevalue("pg_server")
    return server.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgresql"])
def down_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that cannot be reached: a missing directory, a port nobody listens on."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'no-such-dir' / 'switchboard.db'}"
    return f"postgresql://postgres@127.0.0.1:{free_port()}/switchboard"


@pytest_asyncio.fixture(loop_scope="function")
async def down_db(down_url: str) -> AsyncIterator[Database]:
    database = create_database(down_url)
    try:
        yield database
    finally:
        await database.close()
        join_aiosqlite_threads()  # while the test's loop still runs


def join_aiosqlite_threads(deadline_s: float = 10.0) -> None:
    """Wait for aiosqlite's worker threads to end before the test's event loop closes.

    After a failed connect, aiosqlite's thread still answers a stop request that nobody
    awaits; if the loop is closed first the thread dies with "Event loop is closed".
    """
    end = time.monotonic() + deadline_s
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            thread.join(timeout=max(end - time.monotonic(), 0))


@pytest_asyncio.fixture(loop_scope="function")
async def db(db_url: str) -> AsyncIterator[Database]:
    database = await open_database(db_url)
    try:
        yield database
    finally:
        await database.close()
        join_aiosqlite_threads()
