"""Tests for the offline espeak-ng TTS used in keyless mode."""

from __future__ import annotations

import array
import math
import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest
from livekit import rtc
from livekit.agents import Agent, AgentSession, APIConnectOptions, APIError, APITimeoutError, io

from switchboard.call.keyless import EspeakNotFoundError, EspeakTTS

pytestmark = pytest.mark.unit

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"
)

GREETING = "Hello, you have reached the switchboard."
# espeak-ng pads silence with exact zeros, which stay (near) zero after resampling, while
# its speech at the default amplitude measures ~2400 RMS over a whole sentence, pauses
# included. 500 (about -36 dBFS) sits ~5x below speech and far above silence, so it tells
# "spoke" from "emitted a silent or truncated buffer" without being sensitive to voice data.
MIN_SPEECH_RMS = 500.0
NO_RETRY = APIConnectOptions(max_retry=0, timeout=10.0)


def rms(frame: rtc.AudioFrame) -> float:
    samples = array.array("h", bytes(frame.data))
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


def espeak_native_duration(text: str) -> float:
    wav = subprocess.run(
        ["espeak-ng", "--stdout", "-v", "en-us", "-s", "160", "--", text],
        check=True,
        capture_output=True,
    ).stdout
    return (len(wav) - 44) / 2 / 22050  # 44-byte header, 16-bit mono at espeak's 22050 Hz


async def synthesize_frames(tts: EspeakTTS, text: str) -> list[rtc.AudioFrame]:
    async with tts.synthesize(text, conn_options=NO_RETRY) as stream:
        return [ev.frame async for ev in stream]


@needs_espeak
@pytest.mark.parametrize("sample_rate", [8000, 16000, 48000])
async def test_greeting_is_audible_speech_at_requested_rate(sample_rate: int) -> None:
    tts = EspeakTTS(sample_rate=sample_rate)
    frames = await synthesize_frames(tts, GREETING)

    assert frames
    assert {f.sample_rate for f in frames} == {sample_rate}
    assert {f.num_channels for f in frames} == {1}
    audio = rtc.combine_audio_frames(frames)
    assert audio.duration >= 0.5
    # resampling must neither drop nor invent audio: one 10 ms frame of slack
    assert audio.duration == pytest.approx(espeak_native_duration(GREETING), abs=0.01)
    assert rms(audio) > MIN_SPEECH_RMS


@needs_espeak
@pytest.mark.parametrize("text", ["--help me", "-q quiet please", "-w out.wav hello there"])
async def test_leading_dash_is_spoken_not_parsed_as_option(
    text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    audio = rtc.combine_audio_frames(await synthesize_frames(EspeakTTS(), text))

    assert audio.duration >= 0.5
    assert rms(audio) > MIN_SPEECH_RMS
    assert list(tmp_path.iterdir()) == []  # "-w out.wav" did not write a file


def test_missing_executable_explains_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(EspeakNotFoundError, match="espeak-ng is not installed") as exc:
        EspeakTTS(executable=str(tmp_path / "espeak-ng"))
    assert "apt-get install espeak-ng" in str(exc.value)
    assert "brew install espeak-ng" in str(exc.value)

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspeakNotFoundError, match="apt-get install espeak-ng"):
        EspeakTTS()


@needs_espeak
async def test_espeak_failure_is_a_non_retryable_api_error() -> None:
    tts = EspeakTTS(voice="nosuchvoice")
    with pytest.raises(APIError, match="does not exist") as exc:
        await synthesize_frames(tts, GREETING)
    assert not exc.value.retryable
    assert tts.provider == "espeak-ng"
    assert tts.model == "nosuchvoice"


def fake_espeak(tmp_path: Path, *, wav: bytes) -> tuple[EspeakTTS, Path]:
    """An executable that records its pid, writes `wav`, then hangs like a stuck espeak."""
    pid_file, wav_file, script = tmp_path / "pid", tmp_path / "out.wav", tmp_path / "espeak"
    wav_file.write_bytes(wav)
    script.write_text(f'#!/bin/sh\necho $$ > "{pid_file}"\ncat "{wav_file}"\nexec sleep 60\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return EspeakTTS(executable=str(script)), pid_file


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def synthesize_frames_with(tts: EspeakTTS, conn_options: APIConnectOptions) -> None:
    async with tts.synthesize(GREETING, conn_options=conn_options) as stream:
        async for _ in stream:
            pass


async def test_timeout_kills_espeak(tmp_path: Path) -> None:
    tts, pid_file = fake_espeak(tmp_path, wav=b"")
    started = time.monotonic()
    with pytest.raises(APITimeoutError):
        await synthesize_frames_with(tts, APIConnectOptions(max_retry=0, timeout=0.5))
    assert time.monotonic() - started < 5
    assert_gone(int(pid_file.read_text()))


async def test_cancel_kills_espeak(tmp_path: Path) -> None:
    one_second = rtc.AudioFrame.create(22050, 1, 22050).to_wav_bytes()
    tts, pid_file = fake_espeak(tmp_path, wav=one_second)
    async with tts.synthesize(GREETING, conn_options=NO_RETRY) as stream:
        first = await anext(stream)  # audio is flowing and espeak is still running
    assert first.frame.sample_rate == 16000
    assert_gone(int(pid_file.read_text()))


class CaptureAudioOutput(io.AudioOutput):
    """Stands in for the room's audio track: plays instantly and keeps what it got."""

    def __init__(self) -> None:
        super().__init__(label="capture", capabilities=io.AudioOutputCapabilities(pause=True))
        self.frames: list[rtc.AudioFrame] = []
        self._segment = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self._segment:
            self.on_playback_started(created_at=time.time())
        self.frames.append(frame)
        self._segment += frame.duration

    def flush(self) -> None:
        super().flush()
        self.on_playback_finished(playback_position=self._segment, interrupted=False)
        self._segment = 0.0

    def clear_buffer(self) -> None:
        pass


@needs_espeak
async def test_agent_session_speaks_through_espeak() -> None:
    session: AgentSession[None] = AgentSession(tts=EspeakTTS())
    sink = CaptureAudioOutput()
    session.output.audio = sink
    await session.start(Agent(instructions="keyless"), record=False)
    try:
        # two sentences, so the framework's sentence-splitting StreamAdapter is exercised
        await session.say(f"{GREETING} Please hold.", allow_interruptions=False)
    finally:
        await session.aclose()

    audio = rtc.combine_audio_frames(sink.frames)
    assert audio.sample_rate == 16000
    assert audio.num_channels == 1
    assert audio.duration >= 2.0
    assert rms(audio) > MIN_SPEECH_RMS
