"""The lab's Deepgram double: its level-meter endpointing, and the streaming exchange that
``livekit.plugins.deepgram.STT`` has with it (the real plugin, over a real WebSocket)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc
from livekit.agents import stt
from livekit.agents.utils import http_context
from livekit.plugins import deepgram

from lab.testing.fake_deepgram import MIN_ENDPOINT_S, Endpointer, Segment
from lab.testing.fake_openai import FakeOpenAI

pytestmark = pytest.mark.unit

RATE = 16000


def tone(seconds: float) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


def quiet(seconds: float) -> bytes:
    return bytes(2 * int(seconds * RATE))


def test_a_segment_is_reported_once_the_silence_after_it_is_long_enough() -> None:
    meter = Endpointer(RATE, 0.2)
    assert meter.push(quiet(0.5) + tone(1.0) + quiet(0.1)) == []  # not yet
    assert meter.push(quiet(0.15)) == [Segment(0.5, 1.5)]
    assert meter.push(quiet(1.0)) == []  # reported once
    # a gap shorter than the endpoint does not split speech; odd chunk sizes are carried
    chunks = tone(0.3) + quiet(0.1) + tone(0.3)
    found = [s for i in range(0, len(chunks), 333) for s in meter.push(chunks[i : i + 333])]
    assert found == [] and meter.flush() == [Segment(2.75, 3.45)]
    assert meter.flush() == []
    with pytest.raises(ValueError, match="sample_rate"):
        Endpointer(0, 0.2)


async def test_the_deepgram_plugin_gets_one_final_transcript_per_utterance() -> None:
    async with http_context.open():
        await _stream_two_utterances()


async def _stream_two_utterances() -> None:
    with FakeOpenAI() as fake:
        fake.hear(["Where is my order?", "Thanks."])
        recogniser = deepgram.STT(api_key="test-double", base_url=fake.deepgram_url)
        stream = recogniser.stream()
        audio = quiet(0.3) + tone(0.8) + quiet(0.4) + tone(0.5) + quiet(0.4)
        for i in range(0, len(audio), 320):  # 10 ms frames, as a room delivers them
            stream.push_frame(rtc.AudioFrame(audio[i : i + 320], RATE, 1, 160))
        finals: list[str] = []

        async def read() -> None:
            async for ev in stream:
                if ev.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(ev.alternatives[0].text)
                    if len(finals) == 2:
                        return

        try:
            await asyncio.wait_for(read(), timeout=20)
        finally:
            await stream.aclose()
            await recogniser.aclose()
    assert finals == ["Where is my order?", "Thanks."]
    assert MIN_ENDPOINT_S <= 0.4  # the gaps above are long enough to end each one
