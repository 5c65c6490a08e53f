"""Real calls land on different routes, proven by what the agent recorded: the route, the
speech model it chose, and the instructions and tools the model was given."""

from __future__ import annotations

import pytest

from lab.testing.calls import call_ai, call_lab, caller_event
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab, LabHandle

pytestmark = pytest.mark.lab


@pytest.mark.parametrize(
    ("headers", "route", "stt_model"),
    [
        ({"X-Lang": "es"}, "spanish", "nova-3"),
        ({"X-Lang": "fr"}, "default", "nova-2-phonecall"),
        ({}, "default", "nova-2-phonecall"),
    ],
)
async def test_headers_pick_the_route_and_the_speech_model(
    lab: LabHandle, headers: dict[str, str], route: str, stt_model: str
) -> None:
    result = await call_lab(lab, headers=headers, hangup=0.3, timeout=30)
    assert result.answered
    job = caller_event(lab, result)["job_id"]
    chosen = lab.wait_event(event="route", job_id=job)
    assert (chosen["route"], chosen["stt_model"]) == (route, stt_model)


async def test_the_called_number_picks_the_route_its_prompt_and_its_tools(ai_lab: AiLab) -> None:
    ai_lab.fake.script("route-check", [say("Hello.")])
    result = await call_ai(ai_lab, "route-check", hangup=1.0, timeout=30)
    assert result.answered
    job = caller_event(ai_lab.lab, result)["job_id"]
    assert ai_lab.lab.wait_event(event="route", job_id=job)["route"] == "lab-tools"
    (request,) = [r for r in ai_lab.fake.requests if r.scenario == "route-check"][:1]
    tools = {t["function"]["name"] for t in request.body.get("tools", [])}
    assert {"add_participant", "transfer_call", "list_participants"} <= tools
    # The greeting is made on entering, where end_call is hidden (ignore_on_enter): a
    # greeting never hangs up.
    assert "end_call" not in tools
    system = str(request.body["messages"][0]["content"])
    assert "You are the voice assistant" in system and "<call_details>" in system
