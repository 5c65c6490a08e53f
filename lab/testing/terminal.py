"""A program run in a pseudo-terminal, as a user runs it: what it printed, as they saw it.

The console of ``agent.py`` draws with terminal escapes and wraps its lines to the
terminal's width; ``Terminal.seen`` is that output with the escapes removed and every run
of whitespace made one space, so a test can look for a sentence wherever it was wrapped.
"""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def readable(raw: bytes) -> str:
    """``raw`` terminal output without escapes, its whitespace made single spaces."""
    return " ".join(_ESCAPES.sub("", raw.decode("utf-8", errors="replace")).split())


class Terminal:
    def __init__(self, argv: Sequence[str], *, cwd: Path, env: Mapping[str, str]) -> None:
        self.pid, self._fd = pty.fork()
        if self.pid == 0:  # the child: becomes the program, the pty its terminal
            os.chdir(cwd)
            os.execve(argv[0], list(argv), dict(env))
        self.raw = b""
        self.exit_code: int | None = None

    @property
    def seen(self) -> str:
        return readable(self.raw)

    def wait_for(self, text: str, timeout: float) -> None:
        """Read until ``text`` has been shown; fails after ``timeout`` or at the end."""
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            if not self._read(deadline - time.monotonic()):
                shown = self.seen[-3000:]
                raise AssertionError(f"{text!r} not shown within {timeout:g} s:\n{shown}")

    def wait_exit(self, timeout: float) -> int:
        """The exit code once the program has ended; fails after ``timeout``."""
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            pass
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.exit_code = os.waitstatus_to_exitcode(status)
                return self.exit_code
            time.sleep(0.1)  # the terminal is closed: only the exit status is left to wait for
        raise AssertionError(f"still running {timeout:g} s later:\n{self.seen[-3000:]}")

    def type(self, text: str) -> None:
        os.write(self._fd, text.encode())

    def type_until(self, text: str, shown: str, *, timeout: float, every: float = 5.0) -> None:
        """Type ``text`` until ``shown`` appears after it; fails after ``timeout``.

        For a prompt that reads keys in raw mode one at a time and switches the terminal
        back between keys with a flush (livekit-agents' console does, as ``readchar``
        does): keys that arrive while no read is waiting are thrown away, so a test types
        again instead of waiting forever for words that were never read. Only for keys
        that are harmless twice (the console ignores an empty Enter).
        """
        deadline = time.monotonic() + timeout
        while True:
            mark = len(self.raw)
            self.type(text)
            attempt_end = min(deadline, time.monotonic() + every)
            while shown not in readable(self.raw[mark:]):
                if not self._read(attempt_end - time.monotonic()):
                    break
            if shown in readable(self.raw[mark:]):
                return
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"typed {text!r}, {shown!r} not shown within {timeout:g} s:\n"
                    f"{self.seen[-3000:]}"
                )

    def close(self) -> None:
        """Stop the program if it still runs (it is ours: by its pid)."""
        if self.exit_code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        os.close(self._fd)

    def _read(self, budget: float) -> bool:
        """Read what is there within ``budget``; False when the time is up or the program's
        side of the terminal is closed."""
        if budget <= 0:
            return False
        ready, _, _ = select.select([self._fd], [], [], min(budget, 1.0))
        if not ready:
            return budget > 1.0
        try:
            data = os.read(self._fd, 65536)
        except OSError:  # EIO: the program closed its terminal
            return False
        self.raw += data
        return bool(data)
