"""Deepgram's streaming speech-to-text on real calls: the worker picks it when
DEEPGRAM_API_KEY is set (the production default's shape: LiveKit Inference serves Deepgram
too), the plugin streams the caller's audio from the SIP path to the lab's double
(``lab.testing.fake_deepgram``), and the caller's words reach the model as a turn."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from lab.audio import SAMPLE_RATE, load_pcmu, prompt_pcmu, silence_pcmu
from lab.stack import ai_worker_env
from lab.testing.calls import call_ai, caller_event
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab

pytestmark = pytest.mark.lab

SAID = "Where is my order?"


@pytest.fixture(scope="module")
def streaming(ai_lab: AiLab) -> Iterator[AiLab]:
    """The lab's AI worker, restarted with Deepgram's streaming recogniser for this
    module's calls, and back to the batch one after."""
    lab, fake = ai_lab.lab.lab, ai_lab.fake
    lab.procs.stop("agent-ai")
    try:
        env = ai_worker_env(ai_lab.env, fake.base_url, fake.deepgram_url)
        lab.start_agent("start", name="agent-ai-deepgram", env=env)
        yield ai_lab
    finally:
        lab.procs.stop("agent-ai-deepgram")
        lab.start_agent("start", name="agent-ai", env=ai_worker_env(ai_lab.env, fake.base_url))


async def test_the_callers_words_stream_to_deepgram_and_reach_the_model(
    streaming: AiLab,
) -> None:
    fake = streaming.fake
    fake.script("streaming-stt", [say("Hello."), say("It ships today.")])
    fake.hear([SAID])
    audio = silence_pcmu(3.0) + load_pcmu(prompt_pcmu(SAID)) + silence_pcmu(5.0)
    result = await call_ai(
        streaming, "streaming-stt", send_audio=audio, hangup=len(audio) / SAMPLE_RATE, timeout=60
    )
    assert result.answered
    job = caller_event(streaming.lab, result)["job_id"]
    assert streaming.lab.wait_event(event="providers", job_id=job)["stt"].startswith("Deepgram")
    streamed = [r for r in fake.requests if r.path == "/v1/listen" and r.body["text"]]
    assert [r.body["text"] for r in streamed] == [SAID]
    # The reply was asked for with the caller's words as the last user message.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        chats = [r for r in fake.requests if r.scenario == "streaming-stt"]
        users = [m for r in chats for m in r.body.get("messages", []) if m.get("role") == "user"]
        if any(SAID in json.dumps(m.get("content")) for m in users):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no chat request carried the caller's words: {chats}")
