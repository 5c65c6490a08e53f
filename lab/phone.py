"""The lab's caller: places one SIP call with sipp (``lab/sipp/uac.xml``) and owns its media.

sipp does the signalling; this process owns the RTP port the SDP offers, so it hears the
far end (per-packet arrival time and RMS) and can speak (PCMU, RFC 4733 DTMF).  It also
decides when to hang up: it sends a LAB-HANGUP request with the call's Call-ID to sipp's
own SIP port, which the scenario waits for next to the far end's BYE, and which becomes
a CANCEL (before the answer) or a BYE (after it).  What happened is read back from sipp's
``-trace_msg`` log, whose timestamps are sipp's own, taken when it sent or received.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from lab.audio import SAMPLE_RATE, SILENCE_RMS, Arrival, RtpEndpoint, load_pcmu

SIPP_DIR = Path(__file__).resolve().parent / "sipp"
TEARDOWN_GRACE = 3.0  # seconds a CANCEL or BYE exchange gets before sipp is killed
_POLL = 0.02  # how often the trace is re-read while the call runs
_HANGUP = "LAB-HANGUP"  # the private request uac.xml waits for (see _poke)

EndedBy = Literal["caller", "remote", "timeout"]

_ENTRY = re.compile(
    rb"-{47} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6})\n\S+ message "
    rb"(?:sent \((\d+) bytes\):|received \[(\d+)\] bytes :)\n\n"
)
_ANY_ENTRY = re.compile(rb"^-{47}", re.M)
_COMPACT = {"f": "from", "t": "to", "i": "call-id", "m": "contact", "v": "via", "r": "refer-to"}


@dataclass(frozen=True)
class SipMessage:
    """One SIP message sipp sent or received, as its ``-trace_msg`` log shows it."""

    at: float  # wall clock, from sipp's own timestamp
    sent: bool
    start_line: str
    headers: tuple[tuple[str, str], ...]
    body: str

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if _COMPACT.get(key.lower(), key.lower()) == wanted:
                return value
        return None

    @property
    def method(self) -> str | None:
        return None if self.start_line.startswith("SIP/") else self.start_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        parts = self.start_line.split(" ", 2)
        ok = parts[0].startswith("SIP/") and len(parts) > 1 and parts[1].isdigit()
        return int(parts[1]) if ok else None

    @property
    def cseq_method(self) -> str:
        return (self.header("CSeq") or "").rpartition(" ")[2]

    @property
    def uri_user(self) -> str | None:
        """User part of the Request-URI: the number dialled."""
        m = re.match(r"\S+ (?:sips?|tel):([^@;>\s]+)", self.start_line)
        return m[1] if m else None


def _message(raw: bytes, at: float, sent: bool) -> SipMessage:
    head, _, body = raw.decode("utf-8", "replace").partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:  # a folded continuation line
            headers[-1] = (headers[-1][0], f"{headers[-1][1]} {line.strip()}")
        elif ":" in line:
            key, _, value = line.partition(":")
            headers.append((key.strip(), value.strip()))
    return SipMessage(at, sent, lines[0], tuple(headers), body)


def parse_trace(data: bytes) -> list[SipMessage]:
    """The complete messages in a sipp ``-trace_msg`` log (sipp started with TZ=UTC)."""
    out: list[SipMessage] = []
    pos = 0
    while pos < len(data):
        m = _ENTRY.match(data, pos)
        if m is None:  # another kind of entry ("Unexpected ... message"): skip to the next
            nxt = _ANY_ENTRY.search(data, pos + 1)
            if nxt is None:
                break
            pos = nxt.start()
            continue
        size = int(m[2] or m[3])
        raw = data[m.end() : m.end() + size]
        if len(raw) < size:
            break  # sipp is still writing this one
        stamp = datetime.strptime(m[1].decode(), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        out.append(_message(raw, stamp.timestamp(), sent=m[2] is not None))
        pos = m.end() + size
    return out


def read_trace(path: Path) -> list[SipMessage]:
    try:
        return parse_trace(path.read_bytes())
    except FileNotFoundError:
        return []


def free_udp_port(ip: str = "127.0.0.1", *, pair: bool = False) -> int:
    """A UDP port free on ``ip`` right now; with ``pair``, an even one whose port + 2 is
    free too (sipp binds its media port and media port + 2)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first:
            first.bind((ip, 0))
            port: int = first.getsockname()[1]
            if not pair:
                return port
            if port % 2 or port > 65533:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second:
                try:
                    second.bind((ip, port + 2))
                except OSError:
                    continue
                return port
    raise RuntimeError(f"no free UDP port on {ip}")


def sipp_args(ip: str, port: int, workdir: Path) -> list[str]:
    """Options every lab sipp gets: SIP, media and control sockets bound to ``ip`` only
    (sipp's defaults are INADDR_ANY and UDP 8888), logs in ``workdir``, and a 200 for an
    unexpected INFO/OPTIONS/NOTIFY/UPDATE (-aa) instead of aborting the call."""
    return [
        "-i", ip, "-p", str(port), "-bind_local", "-mi", ip, "-ci", ip, "-nostdin", "-aa",
        "-trace_msg", "-message_file", str(workdir / "messages.log"),
        "-trace_err", "-error_file", str(workdir / "errors.log"),
    ]  # fmt: skip


async def start_sipp(
    args: Sequence[str], workdir: Path, sipp: str = "sipp"
) -> asyncio.subprocess.Process:
    with open(workdir / "stderr.log", "wb") as stderr:
        return await asyncio.create_subprocess_exec(
            sipp, *args, cwd=workdir, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=stderr,
            # sipp stamps its message log in local time with no zone; make that UTC.
            env={**os.environ, "TZ": "UTC"},
        )  # fmt: skip


async def stop_sipp(proc: asyncio.subprocess.Process) -> None:
    """Kill sipp unless it has exited, and reap it.  The kill is synchronous, so it happens
    even when this runs in a ``finally`` of a cancelled task."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), 5.0)


def log_tail(workdir: Path, limit: int = 6000) -> str:
    parts = []
    for name in ("stderr.log", "errors.log", "messages.log"):
        with contextlib.suppress(OSError):
            text = (workdir / name).read_bytes()[-limit:].decode("utf-8", "replace").strip()
            if text:
                parts.append(f"== {name} ==\n{text}")
    return "\n".join(parts)


@dataclass(frozen=True)
class CallResult:
    answered: bool
    final_status: int | None  # first final response to the INVITE
    invite_sent_at: float | None  # wall-clock times, from sipp's log and the RTP socket
    answered_at: float | None
    first_audio_at: float | None  # first PCMU packet louder than the silence threshold
    ended_at: float | None
    ended_by: EndedBy | None  # None: sipp gave up on its own (e.g. no response at all)
    received_audio_seconds: float
    max_rms: float
    packets_received: int
    call_id: str
    sipp_log_tail: str
    provisional: tuple[int, ...] = ()
    packets_sent: int = 0
    dtmf_packets_sent: int = 0
    dtmf_received: str = ""  # telephone-events that came back (an echoing far end)
    refer_to: str | None = None  # a REFER the far end sent (the agent transferring us)
    arrivals: tuple[Arrival, ...] = field(default=(), repr=False)  # every RTP packet heard

    @property
    def time_to_answer(self) -> float | None:
        if self.answered_at is None or self.invite_sent_at is None:
            return None
        return self.answered_at - self.invite_sent_at

    @property
    def time_to_first_audio(self) -> float | None:
        if self.first_audio_at is None or self.answered_at is None:
            return None
        return self.first_audio_at - self.answered_at


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 3261 token: a header name
_USER = re.compile(r"[0-9A-Za-z+\-_.!~*'()&=$,;?/%]+")  # RFC 3261 user part, unescaped
_HOST = re.compile(r"[0-9A-Za-z.\-]+")
# Headers the scenario writes itself; a second copy would make the INVITE malformed.
_OWN_HEADERS = {"via", "from", "to", "call-id", "cseq", "contact", "max-forwards",
                "content-type", "content-length", "f", "t", "i", "m", "v", "c", "l"}  # fmt: skip


def header_block(headers: Mapping[str, str]) -> str:
    """``headers`` as CRLF-separated lines for the INVITE, refusing anything that could
    break out of its header line (the values are untrusted data in the product)."""
    lines = []
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or name.lower() in _OWN_HEADERS:
            raise ValueError(f"not an extra SIP header name: {name!r}")
        if any((ord(ch) < 32 and ch != "\t") or ch == "\x7f" for ch in value):
            raise ValueError(f"control character in the value of {name}: {value!r}")
        lines.append(f"{name}: {value}")
    return "\r\n".join(lines)


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


async def _place_call_once(
    *,
    sip_host: str,
    to_number: str,
    from_number: str,
    sip_port: int = 5060,
    headers: Mapping[str, str] | None = None,
    local_ip: str = "127.0.0.1",
    local_sip_port: int = 0,
    rtp_port: int = 0,
    hangup: Literal["remote"] | float = "remote",
    timeout: float = 30.0,
    send_audio: bytes | Path | None = None,
    send_dtmf: str | None = None,
    dtmf_delay: float = 1.0,
    send_silence: bool = True,
    silence_rms: float = SILENCE_RMS,
    on_refer: Literal["accept", "hangup"] = "accept",
    hangup_now: asyncio.Event | None = None,
    on_answer: Callable[[float], None] | None = None,
    sipp: str = "sipp",
) -> CallResult:
    """Call ``sip:<to_number>@<sip_host>:<sip_port>`` from ``<from_number>`` and report.

    ``hangup="remote"`` waits for the far end's BYE; a number hangs up that many seconds
    after the first non-silent audio arrived.  After ``timeout`` seconds the call is torn
    down (CANCEL or BYE, sipp killed ``TEARDOWN_GRACE`` s later at most) and ``ended_by``
    says "timeout".  ``send_audio`` (raw PCMU) is spoken from the answer on, then silence
    if ``send_silence``; ``send_dtmf`` digits go out ``dtmf_delay`` s after the answer.
    ``local_sip_port``/``rtp_port`` 0 pick free ports on ``local_ip``.  A REFER (the agent
    transferring the call) is accepted and reported done, or with ``on_refer="hangup"``
    accepted and then hung up on, as a caller who gives up during the transfer.
    Setting ``hangup_now`` hangs up at once, whatever ``hangup`` says: a test's own cue.
    ``on_answer`` is called with the 200 OK's time (wall clock) as the audio starts.
    """
    _check(_HOST, sip_host, "SIP host")
    _check(_USER, to_number, "number to call")
    _check(_USER, from_number, "caller number")
    extra = header_block(headers or {})
    after_audio = None if hangup == "remote" else float(hangup)
    if after_audio is not None and after_audio < 0:
        raise ValueError("hangup must be 'remote' or seconds >= 0")
    if send_dtmf and any(d not in "0123456789*#ABCDabcd" for d in send_dtmf):
        raise ValueError(f"not DTMF digits: {send_dtmf!r}")
    audio = load_pcmu(send_audio)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    sipp_addr = (local_ip, local_sip_port or free_udp_port(local_ip))
    with tempfile.TemporaryDirectory(prefix="sb-caller-") as tmp:
        workdir = Path(tmp)
        transport, media = await loop.create_datagram_endpoint(
            lambda: RtpEndpoint(silence_rms), local_addr=(local_ip, rtp_port)
        )
        start_media = functools.partial(
            media.stream, audio=audio, dtmf=send_dtmf or "", dtmf_delay=dtmf_delay,
            silence=send_silence,
        )  # fmt: skip
        args = [
            f"{sip_host}:{sip_port}", "-sf", str(SIPP_DIR / "uac.xml"), "-m", "1",
            "-s", to_number, "-key", "from_number", from_number,
            "-key", "rtp_ip", local_ip, "-key", "rtp_port", str(media.local[1]),
            "-set", "extra_headers", extra, "-key", "on_refer", on_refer,
            "-cid_str", f"sb-{uuid.uuid4().hex[:20]}-%u@%s",
            # sipp's own backstop, should this process die without killing it.
            "-timeout", str(math.ceil(timeout + 2 * TEARDOWN_GRACE)),
            *sipp_args(*sipp_addr, workdir),
        ]  # fmt: skip
        try:
            proc = await start_sipp(args, workdir, sipp)
            try:
                reason, gave_up_at = await _drive(
                    proc, media, workdir, sipp_addr, deadline, after_audio, start_media,
                    hangup_now, on_answer,
                )  # fmt: skip
            finally:
                await stop_sipp(proc)
        finally:
            transport.close()
        msgs, tail = read_trace(workdir / "messages.log"), log_tail(workdir)
    if reason is None and not any(m.sent and m.method == "INVITE" for m in msgs):
        raise RuntimeError(f"sipp placed no call (exit status {proc.returncode}):\n{tail}")
    return _result(msgs, media, reason, gave_up_at, tail)


async def place_call(**kwargs: Any) -> CallResult:
    """Place one call (see ``_place_call_once`` for the arguments).

    A free port picked for sipp can be taken before sipp binds it (WebRTC stacks in the lab
    bind ephemeral UDP ports on the phones' address too): then sipp exits at once with
    "Unable to bind main socket", having sent nothing, and we retry on another port.
    """
    for attempt in range(3):
        try:
            return await _place_call_once(**kwargs)
        except RuntimeError as e:
            if "Unable to bind" not in str(e) or kwargs.get("local_sip_port") or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _poke(call_id: str, sipp_addr: tuple[str, int], me: tuple[str, int]) -> bytes:
    """The request that tells our sipp to hang up; sipp finds the call by Call-ID alone."""
    return (
        f"{_HANGUP} sip:hangup@{sipp_addr[0]}:{sipp_addr[1]} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {me[0]}:{me[1]};branch=z9hG4bK-sbhangup\r\n"
        f"From: <sip:lab@{me[0]}>;tag=sbhangup\r\nTo: <sip:lab@{me[0]}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 {_HANGUP}\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def _is_answer(m: SipMessage) -> bool:
    return (
        not m.sent and m.status is not None and 200 <= m.status < 300 and m.cseq_method == "INVITE"
    )


def _sdp_audio(body: str) -> tuple[str, int] | None:
    ip = re.search(r"^c=IN IP4 (\S+)", body, re.M)
    port = re.search(r"^m=audio (\d+)", body, re.M)
    return (ip[1], int(port[1])) if ip and port else None


async def _drive(
    proc: asyncio.subprocess.Process,
    media: RtpEndpoint,
    workdir: Path,
    sipp_addr: tuple[str, int],
    deadline: float,
    after_audio: float | None,
    start_media: Callable[[tuple[str, int]], Coroutine[Any, Any, None]],
    hangup_now: asyncio.Event | None = None,
    on_answer: Callable[[float], None] | None = None,
) -> tuple[EndedBy | None, float | None]:
    """Run the call until sipp exits.  Returns why we hung up (if we did) and when we gave
    up waiting for sipp (if we did)."""
    loop = asyncio.get_running_loop()
    exited = asyncio.ensure_future(proc.wait())
    heard = asyncio.ensure_future(media.first_audio.wait())
    sender: asyncio.Task[None] | None = None
    reason: EndedBy | None = None
    give_up, poked = math.inf, -math.inf
    try:
        while not exited.done():
            msgs = read_trace(workdir / "messages.log")
            invite = next((m for m in msgs if m.sent and m.method == "INVITE"), None)
            ok = next((m for m in msgs if _is_answer(m)), None)
            if sender is None and ok is not None:
                dest = _sdp_audio(ok.body) or media.peer
                if dest is not None:
                    sender = asyncio.create_task(start_media(dest))
                    if on_answer is not None:
                        on_answer(ok.at)
            now = loop.time()
            hangup_in = math.inf
            if after_audio is not None and media.first_audio_at is not None:
                hangup_in = media.first_audio_at + after_audio - time.time()
            if hangup_now is not None and hangup_now.is_set():
                hangup_in = 0.0
            if reason is None and (now >= deadline or hangup_in <= 0):
                reason, give_up = ("timeout" if now >= deadline else "caller"), now + TEARDOWN_GRACE
            if reason is not None:
                # Nothing heard from the far end: there is nothing to CANCEL yet (sipp holds
                # a CANCEL back until a response stops the INVITE's retransmissions).
                heard_back = any(not m.sent and m.status for m in msgs)
                if invite is None or not heard_back or now >= give_up:
                    return reason, time.time()
                seen = any(not m.sent and m.method == _HANGUP for m in msgs)
                # Re-sent only while sipp has not logged it (a UDP datagram can be lost);
                # once it has, a copy would be an unexpected message that aborts the call.
                if not seen and now - poked >= 0.5:
                    poke = _poke(invite.header("Call-ID") or "", sipp_addr, media.local)
                    media.sendto(poke, sipp_addr)
                    poked = now
            # Woken by sipp exiting, the first loud packet, a deadline, or the next poll.
            wake = min(_POLL, max(deadline - now, 0.0), max(hangup_in, 0.0))
            waiters = {exited} if heard.done() else {exited, heard}
            await asyncio.wait(waiters, timeout=max(wake, 0.001), return_when="FIRST_COMPLETED")
        return reason, None
    finally:
        for task in (sender, heard, exited):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


def _result(
    msgs: list[SipMessage],
    media: RtpEndpoint,
    reason: EndedBy | None,
    gave_up_at: float | None,
    tail: str,
) -> CallResult:
    def first(pred: Callable[[SipMessage], bool]) -> SipMessage | None:
        return next((m for m in msgs if pred(m)), None)

    invite = first(lambda m: m.sent and m.method == "INVITE")
    replies = [m for m in msgs if not m.sent and m.status and m.cseq_method == "INVITE"]
    final = next((m for m in replies if (m.status or 0) >= 200), None)
    answered = final is not None and 200 <= (final.status or 0) < 300
    cancel = first(lambda m: m.sent and m.method == "CANCEL")
    local_end = first(lambda m: m.sent and m.method in ("BYE", "CANCEL"))
    remote_end = first(lambda m: not m.sent and m.method == "BYE")
    if final is not None and not answered and not (final.status == 487 and cancel):
        remote_end = final  # refused: busy, declined, not found...
    ended_by: EndedBy | None = None
    ended_at: float | None = None
    if remote_end and (local_end is None or remote_end.at <= local_end.at):
        ended_by, ended_at = "remote", remote_end.at
    elif local_end:
        ended_by, ended_at = reason or "caller", local_end.at
    elif reason is not None:
        ended_by, ended_at = reason, gave_up_at
    refer = first(lambda m: not m.sent and m.method == "REFER")
    return CallResult(
        answered=answered,
        final_status=final.status if final else None,
        invite_sent_at=invite.at if invite else None,
        answered_at=final.at if answered and final else None,
        first_audio_at=media.first_audio_at,
        ended_at=ended_at,
        ended_by=ended_by,
        received_audio_seconds=media.audio_samples / SAMPLE_RATE,
        max_rms=media.max_rms,
        packets_received=len(media.arrivals),
        call_id=(invite.header("Call-ID") or "") if invite else "",
        sipp_log_tail=tail,
        provisional=tuple(m.status for m in replies if m.status and m.status < 200),
        packets_sent=media.packets_sent,
        dtmf_packets_sent=media.dtmf_packets_sent,
        dtmf_received=media.dtmf_received,
        refer_to=refer.header("Refer-To") if refer else None,
        arrivals=tuple(media.arrivals),
    )
