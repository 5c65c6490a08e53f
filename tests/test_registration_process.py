"""The real worker (`agent.py start`) against a server it cannot register with: its
health endpoint says 503 while it tries, and it exits non-zero with one line saying why
and what to check, within its window (SWITCHBOARD_CONNECT_TIMEOUT)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from lab.testing.calls import worker_http_port
from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
STARTUP_S = 90  # imports and warm processes, on a busy 2-core machine


@contextlib.contextmanager
def worker(tmp_path: Path, **env: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log = tmp_path / "worker.log"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SWITCHBOARD_", "LAB_"))}
    full = {
        **base,
        "SWITCHBOARD_STATE_DIR": str(tmp_path / "state"),
        "SWITCHBOARD_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "SWITCHBOARD_WORKER_PORT": "0",
        "SWITCHBOARD_IDLE_PROCESSES": "1",
        "OPENAI_API_KEY": "",
        "DEEPGRAM_API_KEY": "",
        **env,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "agent.py", "start"],
            cwd=ROOT,
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its job processes too are ours to stop, by group
        )
    try:
        yield proc, log
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_exit(proc: subprocess.Popen[bytes], log: Path, timeout: float) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"still running after {timeout} s:\n{log.read_text()[-3000:]}"
        ) from None


def reason_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("switchboard: ")]


async def health(port: int) -> tuple[int, str]:
    # A free port picked for the worker is bound on 0.0.0.0 and on ::, each its own, and
    # the log names whichever came first: ask both loopbacks.
    for host in ("127.0.0.1", "[::1]"):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with (
                aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
                http.get(f"http://{host}:{port}/") as response,
            ):
                return response.status, await response.text()
    raise AssertionError(f"no health endpoint answers on port {port}")


def test_an_unreachable_server_ends_the_worker_with_the_reason(tmp_path: Path) -> None:
    window = 30  # long enough to ask the health endpoint on a busy machine before it ends
    env = {"LIVEKIT_URL": "ws://127.0.0.1:1", "SWITCHBOARD_CONNECT_TIMEOUT": str(window)}
    with worker(tmp_path, LIVEKIT_API_KEY="key", LIVEKIT_API_SECRET="s" * 32, **env) as (
        proc,
        log,
    ):
        deadline = time.monotonic() + STARTUP_S
        while (port := worker_http_port(log)) is None:
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        # Not registered: not ready, although the process is up and answering.
        status, text = asyncio.run(health(port))
        assert status == 503, text
        started = time.monotonic()
        assert wait_exit(proc, log, timeout=STARTUP_S + window + 30) == 1
    # Bounded: the window plus the time to stop, not the framework's minutes of retries.
    assert time.monotonic() - started < STARTUP_S + window + 30
    (line,) = reason_lines(log)
    assert "cannot reach the LiveKit server at ws://127.0.0.1:1" in line
    assert "check LIVEKIT_URL" in line
    assert "Traceback" not in log.read_text()


def test_refused_credentials_end_the_worker_at_once(lab: LabHandle, tmp_path: Path) -> None:
    env = {
        "LIVEKIT_URL": lab.env["LIVEKIT_URL"],
        "LIVEKIT_API_KEY": lab.env["LIVEKIT_API_KEY"],
        "LIVEKIT_API_SECRET": "not-the-lab-secret-" + "x" * 20,
        # Far beyond the test's deadline: only the refusal can end the worker in time.
        "SWITCHBOARD_CONNECT_TIMEOUT": "3600",
    }
    with worker(tmp_path, **env) as (proc, log):
        assert wait_exit(proc, log, timeout=STARTUP_S + 30) == 1
    (line,) = reason_lines(log)
    assert "refused the worker's credentials (401)" in line
    assert "check LIVEKIT_API_KEY / LIVEKIT_API_SECRET" in line
