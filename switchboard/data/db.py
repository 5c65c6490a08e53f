"""The one database (caller directory and call records): engine from a URL, schema, migrations.

SQLite by default, PostgreSQL when ``DATABASE_URL`` says so; the same SQLAlchemy Core code
runs on both. ``open_database`` migrates the schema: migrations run in one transaction
under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so two
processes starting at once apply each migration exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from sqlalchemy import URL, event, make_url, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from switchboard.config.errors import ConfigError, Problem
from switchboard.data.schema import CREATE_SCHEMA_VERSION, LATEST_VERSION, MIGRATIONS, migration_sql
from switchboard.private_files import private_file

logger = logging.getLogger("switchboard.db")

Backend = Literal["sqlite", "postgresql"]
T = TypeVar("T")

# Any 64-bit number unique to this project: the PostgreSQL advisory lock for migrations.
_MIGRATION_LOCK = 0x5357_4244_4D49_4752
_HELP = "use sqlite:///path/to/file.db or postgresql://user:password@host:5432/dbname"


class DatabaseError(RuntimeError):
    """The database is not usable as it is (e.g. its schema is newer than this code)."""


def async_url(url: str) -> URL:
    """The SQLAlchemy URL with our async driver; a ConfigError says what is wrong."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _bad_url("DATABASE_URL is not a database URL") from None
    shown = parsed.render_as_string(hide_password=True)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if backend == "sqlite" and driver in ("pysqlite", "aiosqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise _bad_url(f"DATABASE_URL={shown!r} names no file")
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres") and driver in ("psycopg2", "asyncpg", "psycopg"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise _bad_url(f"DATABASE_URL={shown!r}: unsupported database")


def _bad_url(problem: str) -> ConfigError:
    return ConfigError(
        [Problem("environment", "", "DATABASE_URL", problem, _HELP)], "the environment"
    )


@dataclass(frozen=True, slots=True, eq=False)
class Database:
    """An engine plus the background work started on it (see ``bounded``)."""

    engine: AsyncEngine
    # Same pool; on SQLite its transactions take the write lock up front (BEGIN IMMEDIATE),
    # which avoids the deadlock of two readers both upgrading to writers.
    writer: AsyncEngine
    _background: set[asyncio.Task[Any]] = field(default_factory=set, repr=False)

    @property
    def backend(self) -> Backend:
        return "postgresql" if self.engine.dialect.name == "postgresql" else "sqlite"

    @property
    def display_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A write transaction, committed on success."""
        return self.writer.begin()

    def upsert_insert(self) -> Any:
        """The backend's INSERT supporting ``on_conflict_do_update`` (same API on both)."""
        return postgresql.insert if self.backend == "postgresql" else sqlite.insert

    async def bounded(self, work: Coroutine[Any, Any, T], timeout_s: float, *, cancel: bool) -> T:
        """Wait at most ``timeout_s`` for ``work``; raise TimeoutError after that.

        The work runs in its own task, so we return on time even when a driver cannot be
        interrupted promptly (aiosqlite waits in a thread; closing a connection stuck on a
        lock waits too). With ``cancel`` the late work is cancelled, else it goes on in the
        background (a call record still gets written); either way ``close`` waits for it.
        """
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._forget)
        try:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
        except asyncio.CancelledError:
            task.cancel()
            raise
        if not done:
            if cancel:
                task.cancel()
            raise TimeoutError(f"no answer from the database within {timeout_s:g} s")
        return task.result()

    def _forget(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.debug("late database work failed: %s", type(error).__name__)

    async def close(self, grace_s: float = 5.0) -> None:
        """Let background work finish (up to ``grace_s``), then close every connection."""
        if self._background:
            _, late = await asyncio.wait(set(self._background), timeout=grace_s)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=grace_s)
        await self.engine.dispose()


def create_database(url: str, *, connect_timeout_s: float = 5.0) -> Database:
    """A Database for ``url`` without touching it (no connection, no migration)."""
    target = async_url(url)
    sqlite_file = target.get_backend_name() == "sqlite"
    args: dict[str, Any] = {"timeout": connect_timeout_s}  # on SQLite: the busy timeout
    if not sqlite_file:
        args["server_settings"] = {"application_name": "switchboard"}
    # hide_parameters: error messages must not carry phone numbers into logs.
    # pre_ping: after a PostgreSQL restart, one ping per pooled connection instead of one
    # failed lookup. A SQLite file has no connection to lose.
    engine = create_async_engine(
        target, connect_args=args, hide_parameters=True, pool_pre_ping=not sqlite_file
    )
    if sqlite_file:
        _take_over_sqlite_transactions(engine)
    return Database(engine=engine, writer=engine.execution_options(sqlite_immediate=True))


def _take_over_sqlite_transactions(engine: AsyncEngine) -> None:
    """SQLAlchemy's recipe: Python's sqlite3 would skip BEGIN before SELECT and DDL,
    which breaks transactional migrations; we emit BEGIN ourselves."""

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # WAL: readers (lookups) never wait for a writer (a call record being saved).
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_wal(cursor: Any, attempts: int = 50) -> None:
    """WAL mode is stored in the file, so only the first connection to a new file switches
    it; that switch needs the file to itself and, unlike other statements, SQLite answers
    "database is locked" at once instead of waiting out the busy timeout when another
    process is connecting at the same moment. Retried for up to about 5 s."""
    for attempt in range(attempts):
        try:
            cursor.execute("PRAGMA journal_mode")
            if str(cursor.fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as e:  # the driver's OperationalError, as its adapter re-raises it
            if "database is locked" not in str(e) or attempt == attempts - 1:
                raise
            time.sleep(0.1)  # a back-off in the driver's own thread, not a synchronisation


async def migrate(db: Database) -> int:
    """Bring the schema to the latest version; idempotent. Returns the version."""
    async with db.write() as conn:
        if db.backend == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        await conn.execute(text(CREATE_SCHEMA_VERSION))
        version = await conn.scalar(text("SELECT max(version) FROM schema_version")) or 0
        if version > LATEST_VERSION:
            raise DatabaseError(
                f"the database schema is at version {version}, newer than this switchboard "
                f"knows ({LATEST_VERSION}): upgrade switchboard"
            )
        for migration in MIGRATIONS:
            if migration.version <= version:
                continue
            for statement in migration_sql(migration, db.backend):
                await conn.execute(text(statement))
            await conn.execute(
                text("INSERT INTO schema_version (version, name, applied_at) VALUES (:v, :n, :t)"),
                {"v": migration.version, "n": migration.name, "t": time.time()},
            )
            logger.info("database migrated to version %d (%s)", migration.version, migration.name)
            version = migration.version
    return int(version)


async def schema_version(db: Database) -> int:
    async with db.engine.connect() as conn:
        return int(await conn.scalar(text("SELECT max(version) FROM schema_version")) or 0)


async def open_database(url: str, *, migrate_schema: bool = True) -> Database:
    """Open (and by default create or migrate) the database at ``url``."""
    db = create_database(url)
    if not migrate_schema:
        return db
    if db.backend == "sqlite" and db.engine.url.database:
        # Before SQLite creates it with the umask's 0644: it holds names, numbers and
        # transcripts. Its -wal and -shm files take the database file's mode.
        private_file(Path(db.engine.url.database))
    try:
        await migrate(db)
    except BaseException:
        await db.engine.dispose()
        raise
    return db
