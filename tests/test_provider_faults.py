"""AI provider faults on real calls: a fallback model takes over, and with none left the
caller hears an honest apology instead of dead air."""

from __future__ import annotations

import pytest

from lab.testing.calls import call_ai, caller_event, wait_room_gone
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab

pytestmark = pytest.mark.lab


async def test_fallback_model_answers_when_the_first_fails(ai_lab: AiLab) -> None:
    greeting = "Hello from the fallback model."
    ai_lab.fake.script("fallback", [say(greeting)])
    ai_lab.fake.fail_next(1, status=500)
    result = await call_ai(ai_lab, "fallback", hangup=2.0, timeout=30)
    assert result.answered
    event = caller_event(ai_lab.lab, result)
    said = ai_lab.lab.wait_event(event="transcript", job_id=event["job_id"], text=greeting)
    assert said["role"] == "assistant"
    models = [r.body.get("model") for r in ai_lab.fake.requests if r.scenario == "fallback"]
    assert "fake-second" in models


async def test_no_model_left_means_an_apology_and_a_clean_hang_up(ai_lab: AiLab) -> None:
    ai_lab.fake.script("all-down", [say("never heard")])
    ai_lab.fake.fail_next(20, status=503)
    try:
        result = await call_ai(ai_lab, "all-down", hangup="remote", timeout=40)
    finally:
        ai_lab.fake.fail_next(0)
    assert result.answered
    assert result.ended_by == "remote", "the agent should end the call after apologising"
    assert result.time_to_first_audio is not None
    event = caller_event(ai_lab.lab, result)
    ai_lab.lab.wait_event(event="provider_failed", job_id=event["job_id"])
    said = ai_lab.lab.wait_event(event="agent_said", job_id=event["job_id"])
    assert "technical problem" in said["text"]
    assert result.received_audio_seconds > 3.0  # the whole apology was heard
    await wait_room_gone(ai_lab.lab, event["room_id"], timeout=5)
