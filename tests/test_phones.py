"""The lab's SIP phones against each other on 127.0.0.1: the caller (sipp UAC + Python
RTP) calling the callee (sipp UAS) in each of its modes, plus the media helpers.

No LiveKit here; every test uses its own SIP and media ports.
"""

from __future__ import annotations

import asyncio
import math
import random
import shutil
import socket
import struct
import tempfile
import warnings
from pathlib import Path
from typing import Any

import pytest

from lab.audio import (
    DTMF_EVENTS,
    SILENCE_RMS,
    RtpPacket,
    dtmf_payload,
    linear_to_ulaw,
    parse_dtmf,
    pcmu_decode,
    pcmu_encode,
    pcmu_rms,
    prompt_pcmu,
    silence_pcmu,
    tone_pcmu,
)
from lab.callee import Callee
from lab.phone import (
    SIPP_DIR,
    TEARDOWN_GRACE,
    CallResult,
    free_udp_port,
    header_block,
    log_tail,
    parse_trace,
    place_call,
    sipp_args,
    start_sipp,
    stop_sipp,
)

pytestmark = [pytest.mark.unit, pytest.mark.timeout(60)]

IP = "127.0.0.1"
LAB_NUMBER = "+15105550100"


@pytest.fixture
def port() -> int:
    """The callee's SIP port, new for every test."""
    return free_udp_port(IP)


@pytest.fixture
def caller_number() -> str:
    """Unique per test, so the test can find its own sipp among the processes."""
    return "+1555" + "".join(random.choices("0123456789", k=7))


def sipp_pids(marker: str) -> list[int]:
    """sipp processes whose command line carries ``marker`` (read from /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if argv and argv[0].endswith(b"sipp") and marker.encode() in argv:
            pids.append(int(entry.name))
    return pids


async def call(port: int, caller_number: str, **kwargs: Any) -> CallResult:
    return await place_call(
        sip_host=IP, sip_port=port, to_number=LAB_NUMBER, from_number=caller_number, **kwargs
    )


# ---------------------------------------------------------------------------- calls


async def test_answered_call_detects_the_first_non_silent_audio(
    port: int, caller_number: str
) -> None:
    async with Callee("answer", port=port, audio=tone_pcmu(1.0), audio_lead_in=0.6):
        result = await call(port, caller_number, hangup=0.4, timeout=10)
    assert result.answered, result.sipp_log_tail
    assert result.final_status == 200
    assert 180 in result.provisional
    assert result.invite_sent_at and result.answered_at and result.first_audio_at
    assert result.invite_sent_at <= result.answered_at < result.first_audio_at
    assert result.time_to_answer is not None and 0 <= result.time_to_answer < 1.0
    # The callee sends 0.6 s of digital silence first: those frames must not count.
    assert result.time_to_first_audio is not None and 0.5 <= result.time_to_first_audio < 2.0
    assert result.max_rms > 10 * SILENCE_RMS
    assert result.received_audio_seconds > 0.8
    assert result.packets_received > 40
    assert result.packets_sent > 0  # silence frames, as a real phone keeps sending


async def test_caller_hangs_up_after_audio_with_a_bye(port: int, caller_number: str) -> None:
    async with Callee("answer", port=port, audio=tone_pcmu(3.0), audio_lead_in=0.2) as callee:
        result = await call(port, caller_number, hangup=0.5, timeout=10)
        bye = await callee.wait_for_request("BYE", timeout=2)
        ok = await callee.wait_for(lambda m: m.sent and m.status == 200 and m.cseq_method == "BYE")
    assert result.ended_by == "caller", result.sipp_log_tail
    assert bye.header("Call-ID") == result.call_id
    assert result.first_audio_at is not None and result.ended_at is not None
    # While the callee was still talking: its tone lasts 3 s.
    assert 0.45 <= result.ended_at - result.first_audio_at < 1.5
    assert ok.at >= bye.at


async def test_busy_reports_486(port: int, caller_number: str) -> None:
    async with Callee("busy", port=port) as callee:
        result = await call(port, caller_number, timeout=5)
        await callee.wait_for_request("ACK", timeout=2)  # the 486 was acknowledged
    assert not result.answered
    assert result.final_status == 486, result.sipp_log_tail
    assert result.ended_by == "remote"
    assert result.answered_at is None and result.first_audio_at is None


async def test_reject_reports_603(port: int, caller_number: str) -> None:
    async with Callee("reject", port=port) as callee:
        result = await call(port, caller_number, timeout=5)
        await callee.wait_for_request("ACK", timeout=2)
    assert (result.answered, result.final_status, result.ended_by) == (False, 603, "remote")


async def test_no_answer_times_out_with_cancel_and_leaves_no_sipp(
    port: int, caller_number: str
) -> None:
    async with Callee("no_answer", port=port) as callee:
        result = await call(port, caller_number, timeout=1.0)
        await callee.wait_for_request("CANCEL", timeout=10)
    assert not result.answered
    assert result.ended_by == "timeout", result.sipp_log_tail
    assert result.final_status == 487  # the callee's answer to our CANCEL
    assert 180 in result.provisional
    assert result.invite_sent_at is not None and result.ended_at is not None
    # Bounded, not timed: the call ends at its deadline plus teardown, never much later.
    assert 0.8 <= result.ended_at - result.invite_sent_at < 1.0 + TEARDOWN_GRACE + 3
    assert sipp_pids(caller_number) == []


async def test_silent_far_end_times_out_without_hanging(port: int, caller_number: str) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await call(port, caller_number, timeout=0.5)  # nothing listens on ``port``
    assert loop.time() - started < 0.5 + TEARDOWN_GRACE + 3  # bounded: it never hangs
    assert (result.answered, result.final_status, result.ended_by) == (False, None, "timeout")
    assert sipp_pids(caller_number) == []


async def test_cancelling_a_call_kills_its_sipp(port: int, caller_number: str) -> None:
    async with Callee("no_answer", port=port) as callee:
        task = asyncio.create_task(call(port, caller_number, timeout=30))
        await callee.wait_for_invite(timeout=5)
        assert sipp_pids(caller_number), "the caller's sipp should be running"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert sipp_pids(caller_number) == []


async def test_extra_headers_reach_the_callee(port: int, caller_number: str) -> None:
    headers = {"X-Customer-Id": "42", "X-Lang": "es", "X-Odd": '[call_id] <a&b>;q="x y"'}
    async with Callee("busy", port=port) as callee:
        result = await call(port, caller_number, headers=headers, timeout=5)
        invite = await callee.wait_for_invite()
    assert callee.invite_count == 1
    assert callee.dialled == LAB_NUMBER
    assert f"<sip:{caller_number}@" in (invite.header("From") or "")
    assert invite.header("Call-ID") == result.call_id
    for name, value in headers.items():
        assert invite.header(name) == value  # verbatim: no sipp keyword was expanded


async def test_remote_hangup_is_detected(port: int, caller_number: str) -> None:
    async with Callee("answer_then_hangup", port=port, hangup_after_ms=700) as callee:
        result = await call(port, caller_number, timeout=10)
        await callee.wait_for(lambda m: not m.sent and m.status == 200 and m.cseq_method == "BYE")
    assert result.answered and result.ended_by == "remote", result.sipp_log_tail
    assert result.answered_at is not None and result.ended_at is not None
    assert 0.6 <= result.ended_at - result.answered_at < 1.5


async def test_dtmf_goes_out_as_rfc4733_events(port: int, caller_number: str) -> None:
    # The callee echoes RTP back, so what we sent comes back to be decoded.
    async with Callee("answer", port=port, rtp_echo=True) as callee:
        result = await call(port, caller_number, send_dtmf="159#", dtmf_delay=0.2, timeout=2.5)
        await callee.wait_for_request("BYE", timeout=2)
    assert result.answered, result.sipp_log_tail
    assert result.dtmf_packets_sent == 4 * 7  # 5 updates + 2 repeats of the end packet each
    assert result.dtmf_received == "159#"
    assert result.ended_by == "timeout"  # answered, so torn down with a BYE


async def test_caller_speaks_a_prompt(port: int, caller_number: str, tmp_path: Path) -> None:
    if not (shutil.which("espeak-ng") and shutil.which("sox")):
        pytest.skip("espeak-ng and sox make the prompt")
    prompt = prompt_pcmu("Hello, this is the lab phone.", cache=tmp_path)
    assert prompt_pcmu("Hello, this is the lab phone.", cache=tmp_path) == prompt  # cached
    assert len(prompt.read_bytes()) % 160 == 0 and pcmu_rms(prompt.read_bytes()) > 1000
    async with Callee("answer", port=port, rtp_echo=True):
        result = await call(port, caller_number, send_audio=prompt, hangup=0.3, timeout=10)
    assert result.first_audio_at is not None, result.sipp_log_tail  # our voice, echoed
    assert result.ended_by == "caller"


async def test_caller_accepts_a_transfer(port: int, caller_number: str) -> None:
    target = "sip:+15105550199@127.0.0.1"
    async with Callee("transfer", port=port, hangup_after_ms=300, refer_to=target) as callee:
        result = await call(port, caller_number, timeout=10)
        notify = await callee.wait_for_request("NOTIFY", timeout=2)
    assert result.refer_to == f"<{target}>", result.sipp_log_tail
    assert result.ended_by == "remote"
    assert (notify.header("Content-Type") or "").startswith("message/sipfrag")
    assert notify.body.startswith("SIP/2.0 200 OK")


async def test_callee_accepts_refer_and_reports_the_transfer_done(port: int) -> None:
    target = "sip:+15105550123@127.0.0.1"
    async with Callee("accept_refer", port=port) as callee:
        with tempfile.TemporaryDirectory() as tmp:
            args = [f"{IP}:{port}", "-sf", str(SIPP_DIR / "uac_refer.xml"), "-m", "1",
                    "-s", "+15105550199", "-key", "refer_to", target, "-timeout", "10",
                    *sipp_args(IP, free_udp_port(IP), Path(tmp))]  # fmt: skip
            proc = await start_sipp(args, Path(tmp))
            try:
                status = await asyncio.wait_for(proc.wait(), 10)
            finally:
                await stop_sipp(proc)
            # uac_refer.xml fails the call unless 202 and a sipfrag 200 NOTIFY came back.
            assert status == 0, log_tail(Path(tmp))
        assert callee.refer_to == f"<{target}>"
        assert callee.dialled == "+15105550199"


async def test_wait_for_invite_fails_at_its_deadline(port: int) -> None:
    async with Callee("answer", port=port) as callee:
        with pytest.raises(TimeoutError):
            await callee.wait_for_invite(timeout=0.2)
        assert callee.invite_count == 0


async def test_callee_fails_fast_when_its_port_is_taken(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
        squatter.bind((IP, port))
        with pytest.raises(RuntimeError, match="exited"):
            async with Callee("answer", port=port):
                pass


async def test_bad_input_is_refused_before_dialling(port: int) -> None:
    with pytest.raises(ValueError):
        await place_call(sip_host=IP, sip_port=port, to_number="1@evil", from_number="2")
    with pytest.raises(ValueError):
        await place_call(sip_host=IP, sip_port=port, to_number="1", from_number="2", hangup=-1)
    with pytest.raises(ValueError):
        await place_call(sip_host=IP, sip_port=port, to_number="1", from_number="2", send_dtmf="1x")


@pytest.mark.parametrize(
    "headers",
    [
        {"X-A": "1\r\nVia: SIP/2.0/UDP evil"},
        {"X-A": "1\nB: 2"},
        {"X-A": "nul\x00"},
        {"Bad Name": "1"},
        {"X-A:": "1"},
        {"Via": "SIP/2.0/UDP 1.2.3.4"},
        {"call-id": "x"},
    ],
)
def test_header_injection_is_refused(headers: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        header_block(headers)


def test_header_block_joins_lines() -> None:
    assert header_block({}) == ""
    assert header_block({"X-A": "1", "X-B": "two\twords"}) == "X-A: 1\r\nX-B: two\twords"


# ---------------------------------------------------------------------------- media


def test_pcmu_decoder_matches_g711() -> None:
    assert pcmu_decode(bytes([0xFF, 0x7F, 0x00, 0x80, 0xFE])) == [0, 0, -32124, 32124, 8]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop  # only to cross-check; gone in Python 3.13
    except ImportError:
        return
    every_code = bytes(range(256))
    assert struct.unpack("<256h", audioop.ulaw2lin(every_code, 2)) == tuple(pcmu_decode(every_code))
    ramp = list(range(-32768, 32768, 97))
    assert pcmu_encode(ramp) == audioop.lin2ulaw(struct.pack(f"<{len(ramp)}h", *ramp), 2)


def test_pcmu_round_trip_error_is_within_one_step() -> None:
    for sample in range(-32000, 32000, 37):
        decoded = pcmu_decode(bytes([linear_to_ulaw(sample)]))[0]
        assert abs(decoded - sample) <= max(4, abs(sample) // 16)


def test_rms_of_silence_and_tone() -> None:
    assert pcmu_rms(silence_pcmu(0.02)) == 0.0
    assert pcmu_rms(b"") == 0.0
    assert abs(pcmu_rms(tone_pcmu(0.1, amplitude=8000)) - 8000 / math.sqrt(2)) < 200
    assert len(tone_pcmu(0.05)) == 480  # padded to whole 20 ms frames


def test_rtp_packets_round_trip_and_skip_header_extras() -> None:
    pkt = RtpPacket(0, 65535, 2**32 - 1, 0xDEADBEEF, b"\xff" * 160, marker=True)
    assert RtpPacket.parse(pkt.pack()) == pkt
    # One CSRC, a one-word header extension and two bytes of padding around "abc".
    extras = bytes([0xB1, 101]) + struct.pack("!HII", 7, 8, 9) + struct.pack("!I", 1)
    extras += struct.pack("!HH", 0xBEDE, 1) + b"\0" * 4 + b"abc" + b"\0\x02"
    parsed = RtpPacket.parse(extras)
    assert parsed is not None and (parsed.payload_type, parsed.payload) == (101, b"abc")
    assert RtpPacket.parse(b"INFO sip:x SIP/2.0\r\n") is None


def test_dtmf_payloads() -> None:
    assert dtmf_payload("#", duration=800, end=True) == bytes([11, 0x8A, 0x03, 0x20])
    for digit in DTMF_EVENTS:
        assert parse_dtmf(dtmf_payload(digit, duration=160, end=False)) == (digit, False)
    assert parse_dtmf(bytes([16, 0, 0, 0])) is None


def test_trace_parser_keeps_only_complete_messages() -> None:
    sep = b"-" * 47
    invite = b"INVITE sip:+1510@h SIP/2.0\r\nCall-ID: a\r\ni: shadowed\r\nCSeq: 1 INVITE\r\n\r\n"
    busy = b"SIP/2.0 486 Busy Here\r\nCSeq: 1 INVITE\r\n X-Folded: no\r\n\r\n"
    log = (
        sep + b" 2026-01-02 03:04:05.250000\nUDP message sent (%d bytes):\n\n" % len(invite)
        + invite + b"\n" + sep + b"\nUnexpected UDP message received:\n\nJUNK\n\n"
        + sep + b" 2026-01-02 03:04:06.500000\nUDP message received [%d] bytes :\n\n" % len(busy)
        + busy + b"\n"
        + sep + b" 2026-01-02 03:04:07.000000\nUDP message received [999] bytes :\n\nSIP/2.0 2"
    )  # fmt: skip
    first, second = parse_trace(log)
    assert (first.sent, first.method, first.uri_user) == (True, "INVITE", "+1510")
    assert first.cseq_method == "INVITE"
    assert first.header("call-id") == "a"  # the first of the long and the compact form
    assert (second.sent, second.status, second.method) == (False, 486, None)
    assert second.header("CSeq") == "1 INVITE X-Folded: no"
    assert second.at - first.at == pytest.approx(1.25)
    assert first.at == pytest.approx(1767323045.25)  # sipp's log is read as UTC
