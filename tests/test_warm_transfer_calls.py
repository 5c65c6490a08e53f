"""Warm transfer on real calls: the scripted model transfers the caller to the warm
destination "supervisor" (lab/policy.toml), whose phone is the lab's sipp callee.

The lab's livekit-server (open source, v1.13.5) answers MoveParticipant with "not
implemented", so the merge here is the agent's bridge between the two rooms
(tools/warm_transfer.py); on LiveKit Cloud the person's leg is moved instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from livekit import api

from lab.audio import PT_PCMU, SILENCE_RMS, prompt_pcmu, silence_pcmu, tone_pcmu
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
# The caller's audio after a warm transfer: a 0.4 s tone every 2 s, from PULSES_AT s on.
PULSES_AT, PULSE_PERIOD_S, PULSE_S = 5.0, 2.0, 0.4
LISTEN_S = 12.0
HANG_UP_S = 5.0  # either hang-up ends the other's leg within this


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


def echo_delays(result: CallResult, since: float) -> list[float]:
    """Round trips of the caller's pulses heard back after ``since``: each loud onset
    against the pulse sent before it (pulses go out every period from ``PULSES_AT``)."""
    assert result.answered_at is not None
    loud = [a.at for a in result.arrivals
            if a.payload_type == PT_PCMU and a.rms > SILENCE_RMS and a.at > since]  # fmt: skip
    onsets = [t for i, t in enumerate(loud) if i == 0 or t - loud[i - 1] > 0.5]
    return [(t - result.answered_at - PULSES_AT) % PULSE_PERIOD_S for t in onsets]


async def test_the_person_is_briefed_then_the_two_are_connected(ai_lab: AiLab) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-merge"
    fake.script(scenario, [call("transfer_call", {"destination": "supervisor"})])
    # The side session briefs the person as they answer; they agree, and the model asks
    # to connect them. The person's phone sends back all it hears (its "words" are the
    # briefing, echoed): after the merge the caller's own pulses come back only if the
    # audio flows both ways, and their round trip is the call's mouth-to-ear twice.
    fake.script(scenario + HUMAN_SIDE, [say(BRIEFING), call("connect_to_caller")])
    fake.hear([HUMAN_AGREES])
    since = time.time()
    person = Callee("answer", ip=lab.env["LAB_PHONE_IP"], port=5070, rtp_echo=True)
    hang_up = asyncio.Event()
    async with person, livekit(lab) as lk:
        placed = asyncio.create_task(call_ai(
            ai_lab, scenario, send_audio=silence_pcmu(PULSES_AT) + pulses(150),
            hangup="remote", hangup_now=hang_up, timeout=180))  # fmt: skip
        try:
            job, room = await the_call(lab, scenario, since)
            side = f"{room}-human-agent"
            invite = await person.wait_for_invite(timeout=SLOW)
            assert invite.uri_user == SUPERVISOR
            await until("the person briefed", lambda: _asked(fake, scenario + HUMAN_SIDE))
            outcome = await until("the transfer's outcome", event_of(
                lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
            assert outcome["result"] == "warm_transferred: bridged"
            # Not a wait for anything: the window in which the pulses are measured.
            await asyncio.sleep(LISTEN_S)
            assert await caller_in(lk, room) and await _has(lk, side, HUMAN)
        finally:
            hang_up.set()  # the caller hangs up: the person's leg must follow
            result = await placed
        assert result.ended_by == "caller", result.sipp_log_tail
        bye = await person.wait_for_request("BYE", timeout=SLOW)
        assert result.ended_at is not None and bye.at - result.ended_at < HANG_UP_S
        await until("no room left", lambda: _none_left(lk, room, side))
    assert result.answered, result.sipp_log_tail
    # On hold, the caller heard the hold music; after the merge, their own voice back. How
    # long the hold lasts is the briefing's business (the echoing phone can agree early on
    # a quiet machine): that there was music is what counts.
    assert loud_seconds(result, invite.at, outcome["ts"]) > 0.5
    delays = echo_delays(result, outcome["ts"] + 1.0)
    # A pulse heard back has crossed the bridge both ways; how many of them make it through
    # the echoing phone (which mixes in its own silence) varies from run to run.
    assert delays, "the caller's pulses did not come back"
    print(f"\nwarm transfer, bridged: round trip {sorted(delays)}")
    # The agent said nothing after the merge, to either of them.
    spoken = [e for e in lab.events() if e["event"] in ("transcript", "agent_said")
              and e.get("job_id") == job and e["ts"] > outcome["ts"]]  # fmt: skip
    assert not [e for e in spoken if e.get("role", "assistant") == "assistant"], spoken
    async with lab_database(lab) as db:
        call_id = next(e["caller"]["call_id"] for e in lab.events()
                       if e["event"] == "caller" and e["job_id"] == job)  # fmt: skip
        record = await wait_record(db, call_id, "complete", timeout=SLOW)
    results = [(c.name, c.result) for c in record.tool_calls]
    assert ("transfer_call", "warm_transferred: bridged") in results


async def test_the_person_hanging_up_after_the_merge_ends_the_call(ai_lab: AiLab) -> None:
    lab, fake, scenario = ai_lab.lab, ai_lab.fake, "warm-person-leaves"
    fake.script(scenario, [call("transfer_call", {"destination": "supervisor"})])
    fake.script(scenario + HUMAN_SIDE, [say(BRIEFING), call("connect_to_caller")])
    fake.hear([HUMAN_AGREES])
    since = time.time()
    # The person agrees eight seconds after answering, and hangs up 30 s after answering.
    person = Callee("answer_then_hangup", ip=lab.env["LAB_PHONE_IP"], port=5070,
                    audio=prompt_pcmu(HUMAN_AGREES), audio_lead_in=8.0,
                    hangup_after_ms=30_000)  # fmt: skip
    async with person, livekit(lab) as lk:
        placed = asyncio.create_task(call_ai(ai_lab, scenario, hangup="remote", timeout=180))
        job, room = await the_call(lab, scenario, since)
        outcome = await until("the transfer's outcome", event_of(
            lab, since, event="tool_call", job_id=job, tool="transfer_call"))  # fmt: skip
        assert outcome["result"] == "warm_transferred: bridged"
        result = await placed
        bye = next(m for m in person.messages() if m.sent and m.method == "BYE")
        assert result.ended_by == "remote", result.sipp_log_tail
        assert result.ended_at is not None and result.ended_at - bye.at < HANG_UP_S
        await until("no room left", lambda: _none_left(lk, room, f"{room}-human-agent"))


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


def pulses(seconds: float) -> bytes:
    one = tone_pcmu(PULSE_S, freq=1000.0) + silence_pcmu(PULSE_PERIOD_S - PULSE_S)
    return one * int(seconds / PULSE_PERIOD_S)


async def _none_left(lk: api.LiveKitAPI, *rooms: str) -> bool:
    return all([await _gone(lk, r) for r in rooms])


async def _gone(lk: api.LiveKitAPI, room: str) -> bool:
    listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
    return not listed.rooms


async def _has(lk: api.LiveKitAPI, room: str, identity: str) -> bool:
    return identity in await who_is_in(lk, room)


async def _asked(fake: FakeOpenAI, scenario: str) -> bool:
    return any(r.scenario == scenario for r in fake.requests)
