"""Warm transfer on real calls: the scripted model transfers the caller to the warm
destination "supervisor" (lab/policy.toml), whose phone is the lab's sipp callee.

The lab's livekit-server (open source, v1.13.5) answers MoveParticipant with "not
implemented", so a transfer the person agrees to cannot be completed here: what is tested is
everything up to the merge, and the honest failure after it (the person hung up on, the side
room gone, the caller back with the agent). On LiveKit Cloud the merge goes through.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from livekit import api

from lab.audio import PT_PCMU, SILENCE_RMS, prompt_pcmu
from lab.callee import Callee
from lab.phone import CallResult
from lab.testing.calls import call_ai
from lab.testing.fake_openai import HUMAN_SIDE, FakeOpenAI, Step, call, say
from lab.testing.handles import AiLab, LabHandle
from lab.testing.records import lab_database, wait_record

pytestmark = pytest.mark.lab

SUPERVISOR = "+15105550197"
HUMAN = "human-agent-sip"  # the framework's identity for the person's leg
BRIEFING = "Hello, this is the phone assistant. A caller needs help with an invoice."
HUMAN_AGREES = "Yes, put them through."
SORRY = "I am sorry, I could not connect you. Can I help you with anything else?"
SLOW = 60.0  # generous: two cores, and other labs may run beside this one


def transfer_then(words: str) -> list[Step]:
    """The caller's script: transfer at once, then ``words`` once the tool has answered
    (the step after the tool's own "please hold", itself an assistant message)."""
    return [call("transfer_call", {"destination": "supervisor"}), say(words), say(words)]


@asynccontextmanager
async def livekit(lab: LabHandle) -> AsyncIterator[api.LiveKitAPI]:
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        yield lk


async def who_is_in(lk: api.LiveKitAPI, room: str) -> dict[str, int]:
    """Identity -> participant kind, for everyone in ``room`` (empty: no such room)."""
    try:
        listed = await lk.room.list_participants(api.ListParticipantsRequest(room=room))
    except api.TwirpError:
        return {}
    return {p.identity: p.kind for p in listed.participants}


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = SLOW) -> Any:
    """Poll ``check`` (without blocking the loop the calls' media run on) until it returns
    something true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := await check():
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {timeout}s: {what}")


def event_of(lab: LabHandle, since: float, **match: Any) -> Callable[[], Awaitable[Any]]:
    async def check() -> dict[str, Any] | None:
        return next(
            (e for e in lab.events()
             if e["ts"] >= since and all(e.get(k) == v for k, v in match.items())),
            None,
        )  # fmt: skip

    return check


def said(lab: LabHandle, since: float, job: str, text: str) -> Callable[[], Awaitable[Any]]:
    """The agent's words ``text`` are in the transcript: said, and heard to the end."""
    return event_of(lab, since, event="transcript", job_id=job, role="assistant", text=text)


async def caller_in(lk: api.LiveKitAPI, room: str) -> bool:
    """The caller's SIP leg is in ``room`` (the person's leg, also SIP, never is here)."""
    found = await who_is_in(lk, room)
    return HUMAN not in found and api.ParticipantInfo.Kind.SIP in found.values()


async def the_call(lab: LabHandle, scenario: str, since: float) -> tuple[str, str]:
    """The job and the room name of the call that plays ``scenario``."""

    async def check() -> dict[str, Any] | None:
        return next(
            (e for e in lab.events()
             if e["ts"] >= since and e["event"] == "caller"
             and e["caller"]["custom"].get("scenario") == scenario),
            None,
        )  # fmt: skip

    caller = await until(f"the agent took the call {scenario}", check)
    async with livekit(lab) as lk:
        listed = await lk.room.list_rooms(api.ListRoomsRequest())
    (room,) = [r.name for r in listed.rooms if r.sid == caller["room_id"]]
    return caller["job_id"], room


def loud_seconds(result: CallResult, start: float, end: float) -> float:
    """Seconds of audible audio the caller received between two wall-clock times."""
    packets = [
        a for a in result.arrivals
        if a.payload_type == PT_PCMU and a.rms > SILENCE_RMS and start < a.at < end
    ]  # fmt: skip
    return len(packets) * 0.02


async def test_the_person_is_briefed_then_the_failed_merge_hands_the_caller_back(
    ai_lab: AiLab,
) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-merge"
    fake.script(scenario, transfer_then(SORRY))
    # The side session briefs the person as they answer; they agree (the callee says so,
    # after eight seconds of silence), and the model asks to connect them.
    fake.script(scenario + HUMAN_SIDE, [say(BRIEFING), call("connect_to_caller")])
    fake.hear([HUMAN_AGREES])
    since = time.time()
    person = Callee("answer", ip=lab.env["LAB_PHONE_IP"], port=5070,
                    audio=prompt_pcmu(HUMAN_AGREES), audio_lead_in=8.0)  # fmt: skip
    async with person, livekit(lab) as lk:
        placed = asyncio.create_task(call_ai(ai_lab, scenario, hangup="remote", timeout=180))
        try:
            job, room = await the_call(lab, scenario, since)
            side = f"{room}-human-agent"
            invite = await person.wait_for_invite(timeout=SLOW)
            assert invite.uri_user == SUPERVISOR

            async def both_rooms_up() -> bool:
                person_side = await who_is_in(lk, side)
                return await caller_in(lk, room) and HUMAN in person_side

            await until("the person in the side room while the caller holds", both_rooms_up)
            await until("the person briefed", lambda: _asked(fake, scenario + HUMAN_SIDE))

            outcome = await until("the transfer's outcome", event_of(
                lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
            assert outcome["result"] == "warm_failed: merge_unavailable"
            # The person was hung up on, and nothing of their leg is left on the server.
            await person.wait_for_request("BYE", timeout=SLOW)
            await until("the side room gone", lambda: _gone(lk, side))
            rooms = (await lk.room.list_rooms(api.ListRoomsRequest())).rooms
            for r in rooms:
                assert HUMAN not in await who_is_in(lk, r.name), f"a leg left in {r.name}"
            # The caller is still on the call, and the agent talks with them again.
            assert await caller_in(lk, room), "the caller was dropped"
            sorry = await until("the agent back with the caller", said(lab, since, job, SORRY))
        finally:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))  # ends the call
            result = await placed
    assert result.answered, result.sipp_log_tail
    # On hold, the caller heard the hold music; then the agent's own words again.
    assert loud_seconds(result, invite.at, outcome["ts"]) > 2.0
    assert loud_seconds(result, outcome["ts"] + 0.5, sorry["ts"]) > 1.5
    # What the model was told, and what the record keeps.
    (tool,) = [r for r in fake.tool_results(scenario) if r["name"] == "transfer_call"]
    assert "did not go through" in tool["content"]
    human_side = fake.tool_results(scenario + HUMAN_SIDE)
    assert [r["name"] for r in human_side] == ["connect_to_caller"]
    async with lab_database(lab) as db:
        call_id = next(e["caller"]["call_id"] for e in lab.events()
                       if e["event"] == "caller" and e["job_id"] == job)  # fmt: skip
        record = await wait_record(db, call_id, "complete", timeout=SLOW)
    results = [(c.name, c.result) for c in record.tool_calls]
    assert ("transfer_call", "warm_failed: merge_unavailable") in results


async def test_a_person_who_does_not_answer_leaves_the_caller_with_the_agent(
    ai_lab: AiLab,
) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-no-answer"
    fake.script(scenario, transfer_then(SORRY))
    since = time.time()
    person = Callee("no_answer", ip=lab.env["LAB_PHONE_IP"], port=5070)
    async with person, livekit(lab) as lk:
        placed = asyncio.create_task(call_ai(ai_lab, scenario, hangup="remote", timeout=120))
        try:
            job, room = await the_call(lab, scenario, since)
            await person.wait_for_invite(timeout=SLOW)
            # The lab's ring timeout is 4 s (SWITCHBOARD_RING_TIMEOUT): then the dial is
            # cancelled, and the caller hears why.
            await person.wait_for_request("CANCEL", timeout=SLOW)
            outcome = await until("the transfer's outcome", event_of(
                lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
            assert outcome["result"] == "warm_failed: no_answer"
            await until("the side room gone", lambda: _gone(lk, f"{room}-human-agent"))
            await until("the agent back with the caller", said(lab, since, job, SORRY))
            assert await caller_in(lk, room), "the caller was dropped"
        finally:
            await lk.room.delete_room(api.DeleteRoomRequest(room=room))
            result = await placed
    assert result.answered, result.sipp_log_tail
    (tool,) = [r for r in fake.tool_results(scenario) if r["name"] == "transfer_call"]
    assert "Nobody answered" in tool["content"]


async def test_a_caller_hanging_up_while_the_person_rings_leaves_no_leg(ai_lab: AiLab) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-caller-leaves-ringing"
    fake.script(scenario, [call("transfer_call", {"destination": "supervisor"})])
    since = time.time()
    hang_up = asyncio.Event()
    person = Callee("no_answer", ip=lab.env["LAB_PHONE_IP"], port=5070)
    async with person, livekit(lab) as lk:
        placed = asyncio.create_task(
            call_ai(ai_lab, scenario, hangup="remote", hangup_now=hang_up, timeout=120)
        )
        job, room = await the_call(lab, scenario, since)
        await person.wait_for_invite(timeout=SLOW)
        hang_up.set()  # while the person's phone rings (the lab's ring timeout is 4 s)
        result = await placed
        assert result.ended_by == "caller", result.sipp_log_tail
        # No orphan call: the ringing leg is cancelled and its side room goes.
        await person.wait_for_request("CANCEL", timeout=SLOW)
        await until("the side room gone", lambda: _gone(lk, f"{room}-human-agent"))
        outcome = await until("the transfer's outcome", event_of(
            lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
        assert outcome["result"] == "warm_failed: caller_left"


async def test_a_caller_hanging_up_on_hold_leaves_no_leg_behind(ai_lab: AiLab) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-caller-leaves"
    fake.script(scenario, [call("transfer_call", {"destination": "supervisor"})])
    # The person says nothing, so the briefing waits for them: the caller is still on hold
    # when they hang up.
    fake.script(scenario + HUMAN_SIDE, [say(BRIEFING)])
    since = time.time()
    person = Callee("answer", ip=lab.env["LAB_PHONE_IP"], port=5070)
    async with person, livekit(lab) as lk:
        # Hangs up 20 s after the first audio it hears (the agent's "please hold").
        placed = asyncio.create_task(call_ai(ai_lab, scenario, hangup=20.0, timeout=120))
        job, room = await the_call(lab, scenario, since)
        side = f"{room}-human-agent"
        await until("the person in the side room", lambda: _has(lk, side, HUMAN))
        assert not placed.done(), "the caller hung up before the person answered: too slow"
        result = await placed
        assert result.ended_by == "caller", result.sipp_log_tail
        await person.wait_for_request("BYE", timeout=SLOW)
        await until("the side room gone", lambda: _gone(lk, side))
        outcome = await until("the transfer's outcome", event_of(
            lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
        assert outcome["result"] == "warm_failed: caller_left"


async def _gone(lk: api.LiveKitAPI, room: str) -> bool:
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    return not listed.rooms


async def _has(lk: api.LiveKitAPI, room: str, identity: str) -> bool:
    return identity in await who_is_in(lk, room)


async def _asked(fake: FakeOpenAI, scenario: str) -> bool:
    return any(r.scenario == scenario for r in fake.requests)
