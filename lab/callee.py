"""The lab's callee: a sipp UAS (``lab/sipp/uas_<mode>.xml``) that answers, refuses or
ignores calls, and reports what it saw from sipp's ``-trace_msg`` log.

It is where the agent's outbound calls and transfers land in the lab, and the far end the
caller's own tests dial.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

from lab.audio import load_pcmu, silence_pcmu
from lab.phone import (
    SIPP_DIR,
    SipMessage,
    free_udp_port,
    log_tail,
    read_trace,
    sipp_args,
    start_sipp,
    stop_sipp,
)

CalleeMode = Literal[
    "answer", "busy", "reject", "no_answer", "answer_then_hangup", "accept_refer", "transfer"
]
_POLL = 0.02


def udp_bound_by(pid: int, ip: str, port: int) -> bool:
    """Whether process ``pid`` holds UDP ``ip:port``: the socket inode in /proc/net/udp is
    one of the process's open files.  (Probing by binding could steal the port from sipp;
    a bare "is it bound" would be fooled by whoever else holds it.)"""
    addr = f"{int.from_bytes(socket.inet_aton(ip), sys.byteorder):08X}:{port:04X}"
    with open("/proc/net/udp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    inodes = {f"socket:[{row[9]}]" for row in rows if row[1] == addr}
    for fd in Path(f"/proc/{pid}/fd").glob("*") if inodes else ():
        with contextlib.suppress(OSError):  # fds come and go while we look
            if os.readlink(fd) in inodes:
                return True
    return False


class Callee:
    """``async with Callee("answer", port=5070) as callee:`` runs sipp until the block ends.

    ``audio`` (raw PCMU) is streamed after the answer, looped, behind ``audio_lead_in``
    seconds of digital silence (as the LiveKit SIP service sends before the agent speaks);
    without it the callee streams silence, so RTP flows as from a real phone.
    ``hangup_after_ms`` is how long ``answer_then_hangup`` talks before its BYE and
    ``transfer`` before its REFER to ``refer_to`` (what the LiveKit SIP service sends a
    caller the agent transfers).  ``reject_status`` is the final answer of ``reject``
    (e.g. "503 Service Unavailable" for a failing trunk).  ``rtp_echo`` sends every RTP
    packet back to its sender, to check what a caller sends, DTMF included.
    """

    def __init__(
        self,
        mode: CalleeMode,
        *,
        ip: str = "127.0.0.1",
        port: int = 5070,
        media_port: int = 0,
        audio: bytes | Path | None = None,
        audio_lead_in: float = 0.0,
        hangup_after_ms: int = 1000,
        refer_to: str = "sip:+15105550199@127.0.0.1",
        rtp_echo: bool = False,
        reject_status: str = "603 Decline",
        ready_timeout: float = 5.0,
        sipp: str = "sipp",
    ) -> None:
        if not (SIPP_DIR / f"uas_{mode}.xml").exists():
            raise ValueError(f"unknown callee mode {mode!r}")
        self.mode, self.ip, self.port = mode, ip, port
        self.media_port = media_port or free_udp_port(ip, pair=True)
        self._audio = silence_pcmu(audio_lead_in) + load_pcmu(audio) or silence_pcmu(1.0)
        self._hangup_after_ms = hangup_after_ms
        if any(ch in refer_to for ch in "<>\r\n"):
            raise ValueError(f"not a plain SIP URI: {refer_to!r}")
        self._refer_to = refer_to
        self._rtp_echo = rtp_echo
        if not re.fullmatch(r"[3-6][0-9][0-9] [A-Za-z ]+", reject_status):
            raise ValueError(f"not a SIP final status line: {reject_status!r}")
        self._reject_status = reject_status
        self._ready_timeout = ready_timeout
        self._sipp = sipp
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._final: list[SipMessage] | None = None  # kept after the log is deleted

    @property
    def workdir(self) -> Path:
        assert self._tmp is not None, "the callee is not running"
        return Path(self._tmp.name)

    async def __aenter__(self) -> Callee:
        self._tmp = tempfile.TemporaryDirectory(prefix=f"sb-callee-{self.mode}-")
        # The scenario's rtp_stream names this file; sipp runs in the directory holding it.
        (self.workdir / "callee_audio.ulaw").write_bytes(self._audio)
        # sipp reads a response's status when it loads the scenario, before any -key is
        # substituted, so the reject status is written into a copy of the scenario.
        scenario = self.workdir / f"uas_{self.mode}.xml"
        template = (SIPP_DIR / scenario.name).read_text()
        scenario.write_text(template.replace("[status]", self._reject_status))
        args = ["-sf", str(scenario),
                *sipp_args(self.ip, self.port, self.workdir),
                "-mp", str(self.media_port), "-d", str(self._hangup_after_ms),
                "-key", "refer_to", self._refer_to]  # fmt: skip
        if self._rtp_echo:
            args.append("-rtp_echo")
        try:
            self._proc = await start_sipp(args, self.workdir, self._sipp)
            pid = self._proc.pid
            await self._until(lambda: udp_bound_by(pid, self.ip, self.port), self._ready_timeout,
                              f"sipp listening on {self.ip}:{self.port}")  # fmt: skip
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Kill sipp, keep what it logged, delete its files."""
        if self._proc is not None:
            await stop_sipp(self._proc)
            self._proc = None
        if self._tmp is not None:
            self._final = read_trace(self.workdir / "messages.log")
            self._tmp.cleanup()
            self._tmp = None

    def messages(self) -> list[SipMessage]:
        """Every SIP message sipp sent or received so far, oldest first."""
        if self._tmp is None:
            return list(self._final or [])
        return read_trace(self.workdir / "messages.log")

    def log_tail(self) -> str:
        return log_tail(self.workdir) if self._tmp is not None else "(callee closed)"

    @property
    def invites(self) -> list[SipMessage]:
        """INVITEs received, one per transaction (retransmissions left out)."""
        seen: set[tuple[str | None, str | None, str | None]] = set()
        out = []
        for m in self.messages():
            key = (m.header("Call-ID"), m.header("CSeq"), m.header("Via"))
            if not m.sent and m.method == "INVITE" and key not in seen:
                seen.add(key)
                out.append(m)
        return out

    @property
    def invite_count(self) -> int:
        return len(self.invites)

    @property
    def dialled(self) -> str | None:
        """The Request-URI user part of the first INVITE: the number the caller dialled."""
        invites = self.invites
        return invites[0].uri_user if invites else None

    @property
    def refer(self) -> SipMessage | None:
        return next((m for m in self.messages() if not m.sent and m.method == "REFER"), None)

    @property
    def refer_received(self) -> bool:
        return self.refer is not None

    @property
    def refer_to(self) -> str | None:
        refer = self.refer
        return refer.header("Refer-To") if refer else None

    async def wait_for(
        self, pred: Callable[[SipMessage], bool], timeout: float = 5.0, what: str = "message"
    ) -> SipMessage:
        """The first logged message matching ``pred``, waiting up to ``timeout`` seconds."""
        found: list[SipMessage] = []

        def check() -> bool:
            found[:] = [m for m in self.messages() if pred(m)][:1]
            return bool(found)

        await self._until(check, timeout, what)
        return found[0]

    async def wait_for_invite(self, timeout: float = 5.0) -> SipMessage:
        return await self.wait_for(lambda m: not m.sent and m.method == "INVITE", timeout, "INVITE")

    async def wait_for_request(self, method: str, timeout: float = 5.0) -> SipMessage:
        return await self.wait_for(lambda m: not m.sent and m.method == method, timeout, method)

    async def _until(self, cond: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``cond`` every 20 ms until it holds; fail fast if sipp died, or at the deadline."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not cond():
            if self._proc is not None and self._proc.returncode is not None:
                raise RuntimeError(f"callee sipp exited ({self._proc.returncode}) before "
                                   f"{what}:\n{self.log_tail()}")  # fmt: skip
            if loop.time() >= deadline:
                raise TimeoutError(f"callee: no {what} within {timeout}s:\n{self.log_tail()}")
            await asyncio.sleep(_POLL)
