"""Keypad digits on real calls: the caller's phone keys in a PIN (RFC 4733 through the
real SIP service) and the agent lets them through or hangs up; the agent presses keys on
a leg it dialled, and only that leg gets them.

The AI worker's route ``lab-pin`` (lab/routes.toml) asks for LAB_TEST_PIN, which the
``ai_lab`` fixture sets to ``PIN``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from livekit import api, rtc

from lab.callee import Callee
from lab.testing.calls import call_lab, caller_event, fresh_number, rooms
from lab.testing.fake_openai import call, say
from lab.testing.handles import AiLab, LabHandle

pytestmark = pytest.mark.lab

PIN = "48151623"  # LAB_TEST_PIN of the ai_lab fixture
WRONG = ("31415926", "27182818", "16180339")  # three wrong PINs: easy to spot in a log
# Keys go out this long after the answer: the agent has joined and is asking by then.
DTMF_DELAY = 6.0


def leaks(lab: LabHandle, secrets: tuple[str, ...]) -> list[str]:
    """Where any of ``secrets`` appears in clear: the events file, the AI worker's log."""
    files: list[Path] = [lab.events_file, lab.lab.procs.logs / "agent-ai.log"]
    found = []
    for path in files:
        text = path.read_text(errors="replace") if path.exists() else ""
        found += [f"{s} in {path.name}" for s in secrets if s in text]
    return found


def job_events(lab: LabHandle, job_id: str, name: str) -> list[dict[str, Any]]:
    return [e for e in lab.events() if e["event"] == name and e.get("job_id") == job_id]


def chat_requests(ai_lab: AiLab, scenario: str) -> int:
    return sum(1 for r in ai_lab.fake.requests if r.scenario == scenario)


async def test_right_pin_lets_the_agent_go_on(ai_lab: AiLab) -> None:
    greeting = "You are verified. How can I help you today?"
    ai_lab.fake.script("pin-ok", [say(greeting)])
    result = await call_lab(
        ai_lab.lab,
        to_number=ai_lab.env["LAB_AI_NUMBER"],
        headers={"X-Scenario": "pin-ok"},
        send_dtmf=PIN + "#",
        dtmf_delay=DTMF_DELAY,
        hangup=14.0,  # after the first audio (the PIN prompt): time for the greeting
        timeout=45,
    )
    assert result.answered, result.sipp_log_tail
    assert result.ended_by == "caller", "the agent should have let the caller in"
    job = caller_event(ai_lab.lab, result)["job_id"]
    assert ai_lab.lab.wait_event(event="route", job_id=job)["route"] == "lab-pin"
    accepted = ai_lab.lab.wait_event(event="pin_accepted", job_id=job)
    assert accepted["attempt"] == 1
    said = ai_lab.lab.wait_event(event="transcript", job_id=job, role="assistant")
    assert said["text"] == greeting  # the model's greeting, after the gate
    assert said["ts"] > accepted["ts"]
    assert [e["result"] for e in job_events(ai_lab.lab, job, "pin_attempt")] == ["accepted"]
    assert leaks(ai_lab.lab, (PIN,)) == []


async def test_wrong_pin_three_times_hangs_up(ai_lab: AiLab) -> None:
    ai_lab.fake.script("pin-bad", [say("This must never be said.")])
    result = await call_lab(
        ai_lab.lab,
        from_number=fresh_number(),  # wrong PINs count per number, across calls
        to_number=ai_lab.env["LAB_AI_NUMBER"],
        headers={"X-Scenario": "pin-bad"},
        send_dtmf="#".join(WRONG) + "#",  # typed ahead: each attempt takes the next one
        dtmf_delay=DTMF_DELAY,
        hangup="remote",
        timeout=60,
    )
    assert result.answered, result.sipp_log_tail
    assert result.ended_by == "remote", "the agent should have hung up"
    job = caller_event(ai_lab.lab, result)["job_id"]
    refused = ai_lab.lab.wait_event(event="pin_refused", job_id=job)
    assert (refused["reason"], refused["attempts"]) == ("attempts", 3)
    attempts = job_events(ai_lab.lab, job, "pin_attempt")
    assert [e["result"] for e in attempts] == ["wrong", "wrong", "wrong"]
    assert ai_lab.lab.wait_event(event="agent_hangup", job_id=job)["reason"] == "pin"
    assert chat_requests(ai_lab, "pin-bad") == 0, "the model ran before the PIN"
    # The goodbye was heard before the hang-up: about 3 s of espeak after the last prompt.
    assert result.received_audio_seconds > 10
    assert leaks(ai_lab.lab, (*WRONG, PIN)) == []


async def test_caller_keys_reach_the_model_as_words(ai_lab: AiLab) -> None:
    ai_lab.fake.script("keys", [say("Press 1 for sales."), say("You chose sales.")])
    result = await call_lab(
        ai_lab.lab,
        to_number=ai_lab.env["LAB_AI_NUMBER"],
        headers={"X-Scenario": "keys"},
        send_dtmf="1",  # no "#": the sequence ends after a pause, as a menu choice does
        dtmf_delay=4.0,
        hangup=10.0,
        timeout=40,
    )
    assert result.answered, result.sipp_log_tail
    job = caller_event(ai_lab.lab, result)["job_id"]
    assert ai_lab.lab.wait_event(event="keypress", job_id=job)["digits"] == "•"
    said = ai_lab.lab.wait_event(event="transcript", job_id=job, role="user")
    assert said["text"] == "[the caller pressed: •]"  # masked in the record
    heard = [
        m
        for r in ai_lab.fake.requests
        if r.scenario == "keys"
        for m in r.body.get("messages", [])
        if m.get("role") == "user"
    ]
    assert heard and heard[-1]["content"] == "[the caller pressed: 1]"  # in clear for the model
    reply = ai_lab.lab.wait_event(event="transcript", job_id=job, role="assistant",
                                  text="You chose sales.")  # fmt: skip
    assert reply["ts"] > said["ts"]


# --- the agent presses keys on a dialled leg --------------------------------------------


async def room_of(lab: LabHandle, scenario: str, since: float, timeout: float = 20) -> str:
    """The room of the call with this scenario that started after ``since`` (without
    blocking the event loop, where the call's own media runs)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for e in lab.events():
            if e["event"] != "caller" or e["ts"] < since:
                continue  # other events carry "caller" too (a masked number, in dial logs)
            if e["caller"]["custom"].get("scenario") == scenario:
                # Events name the room by SID only (its name holds the caller's number).
                return (await rooms(lab))[e["room_id"]]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no call with scenario {scenario} started")


@asynccontextmanager
async def dtmf_observer(lab: LabHandle, room_name: str) -> AsyncIterator[list[tuple[str, str]]]:
    """A hidden participant that records every DTMF data packet in the room: (sender,
    key). The SIP service publishes one for each RFC 4733 event a SIP leg sends it."""
    grants = api.VideoGrants(
        room_join=True, room=room_name, hidden=True, can_publish=False, can_publish_data=False
    )
    key, secret = lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    token = api.AccessToken(key, secret).with_identity("test-dtmf-observer").with_grants(grants)
    seen: list[tuple[str, str]] = []
    room = rtc.Room()
    room.on("sip_dtmf_received", lambda ev: seen.append(
        (ev.participant.identity if ev.participant else "", ev.digit)))  # fmt: skip
    options = rtc.RoomOptions(auto_subscribe=False)
    await room.connect(lab.env["LIVEKIT_URL"], token.to_jwt(), options)
    try:
        yield seen
    finally:
        await room.disconnect()


async def test_send_dtmf_reaches_only_the_dialled_leg(ai_lab: AiLab) -> None:
    # "ww": a second's pause first, which the SIP service's dial DTMF also knows.
    ai_lab.fake.script(
        "dtmf-send",
        [
            call("add_participant", {"destination": "callee"}, text="One moment."),
            call("send_dtmf", {"digits": "ww123#"}),
            say("I keyed in the extension."),
        ],
    )
    since = time.time()
    # The callee echoes every RTP packet: RFC 4733 events it receives come back to the SIP
    # service on its leg, which publishes them as DTMF from that leg's participant.
    async with Callee("answer", ip=ai_lab.env["LAB_PHONE_IP"], port=5070, rtp_echo=True) as callee:
        placing = asyncio.create_task(
            call_lab(
                ai_lab.lab,
                to_number=ai_lab.env["LAB_AI_NUMBER"],
                headers={"X-Scenario": "dtmf-send"},
                hangup=10.0,
                timeout=40,
            )
        )
        room = await room_of(ai_lab.lab, "dtmf-send", since)
        async with dtmf_observer(ai_lab.lab, room) as seen:
            result = await placing
        await callee.wait_for_invite(timeout=1)
    assert result.answered, result.sipp_log_tail
    results = ai_lab.fake.tool_results("dtmf-send")
    assert [r["name"] for r in results] == ["add_participant", "send_dtmf"]
    assert "answered" in str(results[0]["content"])
    assert str(results[1]["content"]) == "Pressed 4 keys on the added line."
    # The callee's side got the RFC 4733 events 1, 2, 3, # (its echo came back from its leg).
    assert "".join(k for who, k in seen if who == "dialled-1") == "123#"
    # The caller heard none of the agent's keys: what reached the caller's phone is the
    # echo alone, which the SIP service relays from the dialled leg (as in a conference).
    # A broadcast would have given the caller each key twice.
    assert result.dtmf_received == "123#"
    job = caller_event(ai_lab.lab, result)["job_id"]
    record = ai_lab.lab.wait_event(event="tool_call", job_id=job, tool="send_dtmf")
    assert record["arguments"] == {"digits": "••••••"}
    assert record["result"] == "pressed 4 keys"


async def test_send_dtmf_without_a_dialled_leg_is_refused(ai_lab: AiLab) -> None:
    ai_lab.fake.script("dtmf-alone", [call("send_dtmf", {"digits": "1"}), say("Sorry.")])
    result = await call_lab(
        ai_lab.lab,
        to_number=ai_lab.env["LAB_AI_NUMBER"],
        headers={"X-Scenario": "dtmf-alone"},
        hangup=3.0,
        timeout=30,
    )
    assert result.answered, result.sipp_log_tail
    results = ai_lab.fake.tool_results("dtmf-alone")
    assert results, "the model never got the tool's answer"
    assert "nobody I added" in str(results[0]["content"])
    assert result.dtmf_received == ""
