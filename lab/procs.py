"""Start, probe and stop the lab's processes, recording each pid so we stop only ours."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path


class LabError(RuntimeError):
    """The lab could not start; the message says which process and why."""


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int
    log: Path


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def check_port_free(ip: str, port: int, kind: int = socket.SOCK_STREAM) -> None:
    with socket.socket(socket.AF_INET, kind) as s:
        if kind == socket.SOCK_STREAM:
            # As the servers do: a port left in TIME_WAIT by a lab just stopped is free.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as e:
            proto = "TCP" if kind == socket.SOCK_STREAM else "UDP"
            raise LabError(
                f"port {port}/{proto} on {ip} is already in use ({e.strerror}); stop what "
                "listens there (a lab already up? run `make lab-down`) and retry"
            ) from None


class ProcessTable:
    """The lab's processes, persisted in ``pids.json`` so ``lab down`` works later."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self._file = state_dir / "pids.json"

    def load(self) -> list[Proc]:
        if not self._file.exists():
            return []
        rows = json.loads(self._file.read_text())
        return [Proc(r["name"], r["pid"], Path(r["log"])) for r in rows]

    def running(self) -> list[Proc]:
        return [p for p in self.load() if alive(p.pid)]

    def _save(self, procs: list[Proc]) -> None:
        rows = [{"name": p.name, "pid": p.pid, "log": str(p.log)} for p in procs]
        self._file.write_text(json.dumps(rows, indent=1))

    def start(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None) -> Proc:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                list(argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                # Its own process group: stopping it also stops its children (job
                # processes of the agent worker), and nothing else.
                start_new_session=True,
            )
        proc = Proc(name, popen.pid, log)
        self._save([*self.load(), proc])
        return proc

    def wait_ready(
        self, proc: Proc, probe: Callable[[], bool], *, deadline_s: float, what: str
    ) -> None:
        """Poll ``probe`` until it passes; fail fast if the process died (even with exit 0)."""
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if not alive(proc.pid):
                raise LabError(f"{proc.name} exited before {what}; its log:\n{tail(proc.log)}")
            if probe():
                return
            time.sleep(0.1)
        raise LabError(
            f"{proc.name} was not ready ({what}) within {deadline_s:.0f}s; its log:\n"
            f"{tail(proc.log)}"
        )

    def stop(self, name: str, timeout_s: float = 10.0) -> None:
        """Stop one process by name (e.g. a worker a test fixture started)."""
        procs = self.load()
        for proc in procs:
            if proc.name == name:
                _terminate(proc.pid, timeout_s)
        self._save([p for p in procs if p.name != name])

    def stop_all(self, timeout_s: float = 10.0) -> list[str]:
        stopped = []
        for proc in reversed(self.load()):
            if alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                stopped.append(proc.name)
        end = time.monotonic() + timeout_s
        for proc in self.load():
            while alive(proc.pid) and time.monotonic() < end:
                time.sleep(0.05)
            if alive(proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
        self._file.unlink(missing_ok=True)
        return stopped


def _terminate(pid: int, timeout_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    end = time.monotonic() + timeout_s
    while alive(pid) and time.monotonic() < end:
        time.sleep(0.05)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    """True while ``pid`` runs and is not a zombie (a dead child not yet reaped)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        return False
    return True


def tcp_ok(ip: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((ip, port)) == 0


def http_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


def redis_ok(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def redis_hash(ip: str, port: int, key: str) -> dict[str, bytes]:
    """``HGETALL key`` on the lab's Redis, with the fewest means: a RESP request and a
    reader for the one reply shape it has (an array of bulk strings)."""
    request = f"*2\r\n$7\r\nHGETALL\r\n${len(key)}\r\n{key}\r\n".encode()
    with socket.create_connection((ip, port), timeout=2) as s:
        s.sendall(request)
        reader = s.makefile("rb")
        header = reader.readline()
        if not header.startswith(b"*"):
            raise LabError(f"redis: unexpected reply to HGETALL {key}: {header[:80]!r}")
        items = []
        for _ in range(int(header[1:])):
            size = int(reader.readline()[1:])
            items.append(reader.read(size + 2)[:-2])
    return {items[i].decode(): items[i + 1] for i in range(0, len(items), 2)}


def log_contains(path: Path, needle: str) -> bool:
    try:
        return needle in path.read_text(errors="replace")
    except OSError:
        return False
