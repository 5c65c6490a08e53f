"""Audio for the lab phones: G.711 mu-law (PCMU), loudness, RTP and RFC 4733 packets, and
spoken test prompts made with espeak-ng + sox.

The codec is written out here because ``audioop`` is deprecated (removed in Python 3.13).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import cast

SAMPLE_RATE = 8000
FRAME_SAMPLES = 160  # 20 ms at 8 kHz: the packetisation every SIP stack uses by default
PCMU_SILENCE = 0xFF  # mu-law code of +0
PT_PCMU = 0
PT_DTMF = 101  # the telephone-event payload type both lab SDPs offer
DTMF_EVENTS = "0123456789*#ABCD"  # RFC 4733 event codes 0..15, in order

# What counts as "audio" in a 20 ms PCMU frame.  Before the agent speaks, the LiveKit SIP
# service sends digital silence (0xFF, RMS 0) or the near-silence of decoded/resampled
# quiet, a few of mu-law's smallest steps (8..120).  Synthetic speech frames sit around
# -30..-15 dBFS (RMS ~1000..6000; the lab prompts are normalised to -3 dBFS peak).  200
# (about -44 dBFS) is far above the first and about 14 dB under quiet speech, so the
# first frame over it is where speech starts, give or take a frame of onset.
SILENCE_RMS = 200.0


def _ulaw_to_linear(code: int) -> int:
    code = ~code & 0xFF
    magnitude = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return 0x84 - magnitude if code & 0x80 else magnitude - 0x84


ULAW_TO_LINEAR: tuple[int, ...] = tuple(_ulaw_to_linear(c) for c in range(256))
_ULAW_SQUARED: tuple[int, ...] = tuple(s * s for s in ULAW_TO_LINEAR)


def linear_to_ulaw(sample: int) -> int:
    """One signed 16-bit sample to its mu-law code: G.711 on the top 14 bits, rounded the
    way ``audioop`` rounded, so the two agree code for code."""
    value = max(-32768, min(32767, sample)) >> 2
    mask = 0x7F if value < 0 else 0xFF  # mu-law stores every bit inverted, sign included
    magnitude = min(abs(value), 8159) + 0x21  # clipped, plus the G.711 bias
    segment = magnitude.bit_length() - 6  # 0..7; 8 only for the clipped maximum
    if segment > 7:
        return 0x7F ^ mask
    return ((segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)) ^ mask


def pcmu_decode(payload: bytes) -> list[int]:
    return [ULAW_TO_LINEAR[b] for b in payload]


def pcmu_encode(samples: Iterable[int]) -> bytes:
    return bytes(linear_to_ulaw(s) for s in samples)


def rms(samples: list[int]) -> float:
    return math.sqrt(sum(s * s for s in samples) / len(samples)) if samples else 0.0


def pcmu_rms(payload: bytes) -> float:
    """RMS of a PCMU payload in 16-bit linear units, without building the sample list."""
    if not payload:
        return 0.0
    return math.sqrt(sum(map(_ULAW_SQUARED.__getitem__, payload)) / len(payload))


def pad_frames(pcmu: bytes) -> bytes:
    """Pad with silence to whole 20 ms frames (sipp's rtp_stream cannot send a short tail)."""
    return pcmu + bytes([PCMU_SILENCE]) * (-len(pcmu) % FRAME_SAMPLES)


def silence_pcmu(seconds: float) -> bytes:
    return pad_frames(bytes([PCMU_SILENCE]) * round(seconds * SAMPLE_RATE))


def tone_pcmu(seconds: float, freq: float = 440.0, amplitude: int = 8000) -> bytes:
    """A sine tone: loud, deterministic audio for tests that need no speech engine."""
    n = round(seconds * SAMPLE_RATE)
    step = 2 * math.pi * freq / SAMPLE_RATE
    return pad_frames(pcmu_encode(round(amplitude * math.sin(i * step)) for i in range(n)))


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def pack(self) -> bytes:
        first = 0x80  # version 2, no padding, no extension, no CSRCs
        second = (0x80 if self.marker else 0) | self.payload_type
        header = struct.pack("!BBHII", first, second, self.seq, self.timestamp, self.ssrc)
        return header + self.payload

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket | None:
        """The packet, or None for anything that is not RTP version 2."""
        if len(data) < 12 or data[0] >> 6 != 2:
            return None
        first, second, seq, timestamp, ssrc = struct.unpack_from("!BBHII", data)
        start = 12 + 4 * (first & 0x0F)  # skip the CSRC list
        if first & 0x10:  # header extension: 4-byte preamble, then its length in words
            if len(data) < start + 4:
                return None
            start += 4 + 4 * struct.unpack_from("!H", data, start + 2)[0]
        end = len(data) - (data[-1] if first & 0x20 else 0)  # padding count is the last byte
        if start > end:
            return None
        return cls(second & 0x7F, seq, timestamp, ssrc, data[start:end], bool(second & 0x80))


def dtmf_payload(digit: str, *, duration: int, end: bool, volume: int = 10) -> bytes:
    """An RFC 4733 telephone-event payload; ``duration`` in 8 kHz timestamp units."""
    event = DTMF_EVENTS.index(digit.upper())
    return struct.pack("!BBH", event, (0x80 if end else 0) | (volume & 0x3F), duration)


def parse_dtmf(payload: bytes) -> tuple[str, bool] | None:
    """(digit, end-of-event) from a telephone-event payload, None if it is not one."""
    if len(payload) < 4 or payload[0] >= len(DTMF_EVENTS):
        return None
    return DTMF_EVENTS[payload[0]], bool(payload[1] & 0x80)


def audio_cache_dir() -> Path:
    return Path.home() / ".cache" / "switchboard" / "audio"


def prompt_pcmu(
    text: str, *, voice: str = "en-us", wpm: int = 160, cache: Path | None = None
) -> Path:
    """Raw 8 kHz PCMU of ``text`` spoken by espeak-ng, normalised to -3 dBFS, cached by content.

    Generated once per (text, voice, speed) and reused: the caller "speaks" it into calls.
    """
    cache = cache or audio_cache_dir()
    key = hashlib.sha256(f"{voice}\0{wpm}\0{text}".encode()).hexdigest()[:20]
    out = cache / f"prompt-{key}.ulaw"
    if out.exists():
        return out
    missing = [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]
    if missing:
        raise RuntimeError(f"cannot make a spoken prompt: {', '.join(missing)} not installed")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".prompt-") as tmp:
        wav, raw = Path(tmp) / "speech.wav", Path(tmp) / "speech.ulaw"
        # Text goes through stdin so that a prompt starting with "-" is never an option.
        _run(["espeak-ng", "-v", voice, "-s", str(wpm), "-w", str(wav), "--stdin"], text)
        to_pcmu = ["-r", "8000", "-c", "1", "-e", "mu-law", "-b", "8", "-t", "raw"]
        _run(["sox", str(wav), *to_pcmu, str(raw), "gain", "-n", "-3"])
        raw.write_bytes(pad_frames(raw.read_bytes()))
        # Renamed into place whole, so a concurrent reader never sees half a prompt.
        os.replace(raw, out)
    return out


def _run(argv: list[str], stdin: str = "") -> None:
    done = subprocess.run(argv, input=stdin.encode(), capture_output=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")


def load_pcmu(audio: bytes | Path | None) -> bytes:
    """Raw PCMU from bytes or a file of raw PCMU (as ``prompt_pcmu`` makes), padded."""
    if audio is None:
        return b""
    return pad_frames(audio.read_bytes() if isinstance(audio, Path) else audio)


@dataclass(frozen=True)
class Arrival:
    at: float  # wall clock when the event loop got the datagram
    payload_type: int
    rms: float  # 0.0 for anything but PCMU


def _dtmf_plan(digits: str, first_tick: int) -> dict[int, tuple[bool, int, bytes]]:
    """20 ms tick -> (marker, tick the event started, payload) for each digit: 100 ms of
    tone, the end packet sent three times in all (RFC 4733 2.5.1.4), 100 ms between digits."""
    plan: dict[int, tuple[bool, int, bytes]] = {}
    tick = first_tick
    for digit in digits:
        start = tick
        for k in range(1, 8):
            payload = dtmf_payload(digit, duration=FRAME_SAMPLES * min(k, 5), end=k >= 5)
            plan[tick] = (k == 1, start, payload)
            tick += 1
        tick += 5
    return plan


class RtpEndpoint(asyncio.DatagramProtocol):
    """One call's media port: records every packet that arrives and sends 20 ms packets
    (PCMU and telephone-event) from the same port, as a symmetric-RTP phone does."""

    def __init__(self, silence_rms: float = SILENCE_RMS) -> None:
        self.silence_rms = silence_rms
        self.arrivals: list[Arrival] = []
        self.first_audio_at: float | None = None
        self.first_audio = asyncio.Event()
        self.audio_samples = 0
        self.max_rms = 0.0
        self.dtmf_received = ""
        self.peer: tuple[str, int] | None = None  # where RTP came from, if no SDP says
        self.local: tuple[str, int] = ("0.0.0.0", 0)
        self.packets_sent = 0
        self.dtmf_packets_sent = 0
        self._dtmf_seen: set[tuple[int, int]] = set()
        self._transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.DatagramTransport, transport)
        self.local = transport.get_extra_info("sockname")[:2]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        now = time.time()
        pkt = RtpPacket.parse(data)
        if pkt is None:
            return
        self.peer = self.peer or addr
        level = 0.0
        if pkt.payload_type == PT_PCMU:
            level = pcmu_rms(pkt.payload)
            self.audio_samples += len(pkt.payload)
            self.max_rms = max(self.max_rms, level)
            if level > self.silence_rms and self.first_audio_at is None:
                self.first_audio_at = now
                self.first_audio.set()
        elif pkt.payload_type == PT_DTMF:
            event = parse_dtmf(pkt.payload)
            # Count an event once although its end packet comes three times.
            if event and event[1] and (pkt.ssrc, pkt.timestamp) not in self._dtmf_seen:
                self._dtmf_seen.add((pkt.ssrc, pkt.timestamp))
                self.dtmf_received += event[0]
        self.arrivals.append(Arrival(now, pkt.payload_type, level))

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.sendto(data, addr)

    async def stream(
        self,
        dest: tuple[str, int],
        *,
        audio: bytes = b"",
        dtmf: str = "",
        dtmf_delay: float = 0.0,
        silence: bool = True,
    ) -> None:
        """Send to ``dest`` every 20 ms until cancelled: ``audio`` (raw PCMU) once, then
        silence frames if ``silence`` (real phones never stop RTP, and SIP services hang up
        on media timeouts), with ``dtmf`` digits starting ``dtmf_delay`` s in, replacing
        the audio while each digit lasts."""
        frames = [audio[i : i + FRAME_SAMPLES] for i in range(0, len(audio), FRAME_SAMPLES)]
        plan = _dtmf_plan(dtmf, round(dtmf_delay / 0.02))
        ssrc, seq, ts0 = random.getrandbits(32), random.getrandbits(16), random.getrandbits(32)
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_frame = 0
        silent_frame = bytes([PCMU_SILENCE]) * FRAME_SAMPLES
        for tick in itertools.count():
            pkt: RtpPacket | None = None
            if tick in plan:
                marker, event_tick, payload = plan[tick]
                ts = (ts0 + FRAME_SAMPLES * event_tick) & 0xFFFFFFFF
                pkt = RtpPacket(PT_DTMF, seq, ts, ssrc, payload, marker)
                self.dtmf_packets_sent += 1
            elif next_frame < len(frames) or silence:
                frame = frames[next_frame] if next_frame < len(frames) else silent_frame
                next_frame += 1
                ts = (ts0 + FRAME_SAMPLES * tick) & 0xFFFFFFFF
                pkt = RtpPacket(PT_PCMU, seq, ts, ssrc, frame, marker=tick == 0)
            if pkt is not None:
                self.sendto(pkt.pack(), dest)
                self.packets_sent += 1
                seq = (seq + 1) & 0xFFFF
            # Paced against the start time, so a late wake-up does not shift later packets.
            await asyncio.sleep(max(0.0, start + (tick + 1) * 0.02 - loop.time()))
