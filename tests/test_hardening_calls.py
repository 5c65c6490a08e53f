"""What a hostile participant or caller can no longer do, on real calls:

- end a call with a forged shutdown goodbye, hidden or not (the worker signs its own);
- guess a PIN over many calls (wrong PINs count per number, across calls);
- find a full phone number in what the worker wrote (events, logs, database).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from livekit import api, rtc
from sqlalchemy import inspect, text

from lab.callee import Callee
from lab.phone import CallResult
from lab.testing.calls import call_ai, caller_event, fresh_number, rooms
from lab.testing.fake_openai import call, say
from lab.testing.handles import AiLab, LabHandle
from lab.testing.records import lab_database, wait_record
from switchboard.call.shutdown import GOODBYE_TOPIC, goodbye_message, new_goodbye_key
from switchboard.config.prompts import load_prompts
from switchboard.numbers import mask_number

pytestmark = pytest.mark.lab

PIN = "48151623"  # LAB_TEST_PIN of the AI worker
DTMF_DELAY = 6.0  # keys go out this long after the answer: the agent asks by then


def job_events(lab: LabHandle, job_id: str, name: str) -> list[dict[str, Any]]:
    return [e for e in lab.events() if e["event"] == name and e.get("job_id") == job_id]


async def wait_job_events(
    lab: LabHandle, job_id: str, name: str, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(found := job_events(lab, job_id, name)) >= count:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"fewer than {count} {name} events for {job_id}: {found}")


async def delivered(lab: LabHandle, job: str, send: Callable[[], Awaitable[None]]) -> str:
    """Send until the call reports one more ignored goodbye; its reason. A participant's
    first packets can be lost while its data channel opens, or reach an agent that does
    not know the sender yet: each try waits for the report under its own deadline."""
    before = len(job_events(lab, job, "shutdown_ignored"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        await send()
        try:
            seen = await wait_job_events(lab, job, "shutdown_ignored", before + 1, timeout=5)
        except AssertionError:
            continue
        return str(seen[before]["reason"])
    raise AssertionError("the agent never reported the message")


async def room_of_job(lab: LabHandle, job_id: str, timeout: float = 20) -> str:
    """The name of the room of ``job_id`` (events name rooms by SID only)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sids = {e["room_id"] for e in lab.events() if e.get("job_id") == job_id}
        named = await rooms(lab)
        if found := [named[sid] for sid in sids if sid in named]:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError(f"no room for job {job_id}")


async def job_of_call_from(lab: LabHandle, number: str, since: float, timeout: float = 90) -> str:
    """The job of the call from ``number`` that started after ``since``."""
    masked, deadline = mask_number(number), time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in lab.events():
            if (
                e["event"] == "caller"
                and e["ts"] >= since
                and e["caller"]["phone_number"] == masked
            ):
                return str(e["job_id"])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no call from {number}")


@asynccontextmanager
async def participant(
    lab: LabHandle, room: str, identity: str, *, hidden: bool
) -> AsyncIterator[rtc.Room]:
    """A participant with a token from the project's key, as anyone holding one could join."""
    grants = api.VideoGrants(
        room_join=True, room=room, hidden=hidden, can_publish=False, can_publish_data=True
    )
    key, secret = lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    token = api.AccessToken(key, secret).with_identity(identity).with_grants(grants)
    joined = rtc.Room()
    await joined.connect(
        lab.env["LIVEKIT_URL"], token.to_jwt(), rtc.RoomOptions(auto_subscribe=False)
    )
    try:
        yield joined
    finally:
        await joined.disconnect()


def agent_of(room: rtc.Room) -> str:
    agents = [
        p.identity
        for p in room.remote_participants.values()
        if p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
    ]
    assert agents, "the call's agent is not in the room"
    return agents[0]


# --- 1. the shutdown goodbye ------------------------------------------------------------


async def test_no_participant_can_make_the_agent_say_the_shutdown_goodbye(ai_lab: AiLab) -> None:
    lab = ai_lab.lab
    # Whatever the caller's line makes the model say next, it has an answer.
    ai_lab.fake.script("forge-goodbye", [say("Hello, I am listening.")] + [say("Go on.")] * 5)
    number = fresh_number()
    since = time.time()
    placing = asyncio.create_task(
        call_ai(ai_lab, "forge-goodbye", from_number=number, hangup=30.0, timeout=120)
    )
    job = await job_of_call_from(lab, number, since)
    room = await room_of_job(lab, job)
    sid = next(e["room_id"] for e in lab.events() if e.get("job_id") == job)
    # A forged message, signed with a key of our own for this very call: the best guess.
    forged = goodbye_message(new_goodbye_key(), sid, job, time.time())
    async with (
        participant(lab, room, "intruder-hidden", hidden=True) as hidden,
        participant(lab, room, "intruder-visible", hidden=False) as visible,
        api.LiveKitAPI(
            lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
        ) as lk,
    ):
        agent = agent_of(hidden)

        def publish(sender: rtc.Room, data: bytes) -> Callable[[], Awaitable[None]]:
            return lambda: sender.local_participant.publish_data(
                data, reliable=True, destination_identities=[agent], topic=GOODBYE_TOPIC
            )

        async def send_data(data: bytes) -> None:
            # Through the server's API, as a room admin's token could: no sender at all.
            request = api.SendDataRequest(
                room=room,
                data=data,
                topic=GOODBYE_TOPIC,
                kind=api.DataPacket.Kind.RELIABLE,
                destination_identities=[agent],
            )
            await lk.room.send_data(request)

        reasons = [
            await delivered(lab, job, publish(hidden, b"worker shutting down")),
            await delivered(lab, job, publish(hidden, forged)),
            await delivered(lab, job, publish(visible, b"worker shutting down")),
            await delivered(lab, job, publish(visible, forged)),
            await delivered(lab, job, lambda: send_data(forged)),
        ]
    result = await placing
    assert result.answered, result.sipp_log_tail
    # The hidden sender and the server API look alike to the SDK (no sender): the signature
    # turns them away; a visible sender is turned away for being one.
    assert reasons == ["unsigned", "unsigned", "participant", "participant", "unsigned"]
    assert result.ended_by == "caller", "the call should have gone on until the caller hung up"
    assert job_events(lab, job, "shutdown_goodbye") == []
    assert job_events(lab, job, "agent_hangup") == []
    said = [e["text"] for e in job_events(lab, job, "agent_said")]
    assert load_prompts()["shutdown_goodbye"] not in said


# --- 2. PIN attempts across calls -------------------------------------------------------


async def pin_call(ai_lab: AiLab, number: str, keys: str) -> tuple[CallResult, str]:
    """A call that keys in ``keys``; the agent hangs up on a refused caller, and a caller
    it lets in hangs up once the agent had time to greet them."""
    let_in = keys == PIN + "#"
    result = await call_ai(
        ai_lab,
        "pin-lock",
        from_number=number,
        send_dtmf=keys or None,
        dtmf_delay=DTMF_DELAY,
        hangup=16.0 if let_in else "remote",
        timeout=75,
    )
    assert result.answered, result.sipp_log_tail
    return result, caller_event(ai_lab.lab, result)["job_id"]


@pytest.mark.timeout(600)  # five calls and a lockout to wait out, on a busy machine
async def test_wrong_pins_across_calls_lock_the_number_out(ai_lab: AiLab) -> None:
    lab = ai_lab.lab
    ai_lab.fake.script("pin-lock", [say("You are verified.")])
    number, other = fresh_number(), fresh_number()
    # Call 1: the route's 3 attempts, all wrong (3 of the 5 the number may get).
    result, first = await pin_call(ai_lab, number, "11111111#22222222#33333333#")
    assert result.ended_by == "remote"
    assert lab.wait_event(event="pin_refused", job_id=first)["reason"] == "attempts"
    # Call 2: the 5th wrong PIN locks the number out mid-call; told to call back later.
    result, second = await pin_call(ai_lab, number, "44444444#55555555#")
    assert result.ended_by == "remote"
    lockout = lab.wait_event(event="pin_lockout", job_id=second)
    assert (lockout["lockouts"], lockout["seconds"]) == (1, 25)
    refused = lab.wait_event(event="pin_refused", job_id=second)
    assert (refused["reason"], refused["attempts"]) == ("locked_out", 2)
    # Call 3, still locked out: no PIN asked, told to call back, the call ends.
    result, third = await pin_call(ai_lab, number, "")
    assert result.ended_by == "remote"
    assert lab.wait_event(event="pin_locked_out", job_id=third)["until"] == lockout["until"]
    assert job_events(lab, third, "pin_attempt") == []
    assert lab.wait_event(event="agent_hangup", job_id=third)["reason"] == "pin"
    # Another number is not affected: its right PIN lets it in at once.
    result, elsewhere = await pin_call(ai_lab, other, PIN + "#")
    assert lab.wait_event(event="pin_accepted", job_id=elsewhere)["attempt"] == 1
    # Once the lockout is over (a time to wait out, not a synchronisation), the number may
    # try again, and its call's record says the lockout ended.
    await asyncio.sleep(max(0.0, lockout["until"] - time.time() + 1))
    result, after = await pin_call(ai_lab, number, PIN + "#")
    assert lab.wait_event(event="pin_lockout_ended", job_id=after)["ended_at"] == lockout["until"]
    assert lab.wait_event(event="pin_accepted", job_id=after)["attempt"] == 1
    async with lab_database(lab) as db:
        statuses = {}
        for job, event in (
            (second, "pin lockout (25 s)"),
            (third, "pin locked out"),
            (after, "pin lockout ended"),
        ):
            call_id = next(e["caller"]["call_id"] for e in job_events(lab, job, "caller"))
            record = await wait_record(db, call_id, "complete", timeout=20)
            statuses[event] = [s.status for s in record.statuses]
            assert event in statuses[event], statuses


# --- 3. no full number in what the worker wrote -----------------------------------------


async def database_dump(lab: LabHandle) -> str:
    """Every row of every table of the lab's database, as text."""
    async with lab_database(lab) as db, db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        rows = [
            f"{table}: {row!r}"
            for table in tables
            for row in (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
        ]
    return "\n".join(rows)


async def test_no_full_number_in_the_events_logs_or_database(ai_lab: AiLab) -> None:
    lab = ai_lab.lab
    caller, dialled = fresh_number(), "+15105550177"  # the lab's policy allows +1510555...
    # The greeting (made before the session, without tools), then the caller's key press
    # is their turn, which the model answers by dialling.
    ai_lab.fake.script(
        "masking",
        [
            say("Hello, who shall I add?"),
            call("add_participant", {"destination": dialled}, text="Calling +1 510 555 0177."),
            say(f"I added {dialled} to the call."),
        ],
    )
    async with Callee("answer", ip=ai_lab.env["LAB_PHONE_IP"], port=5070) as callee:
        # Time for the model's turn and the dial, on a busy machine, before the caller hangs up.
        result = await call_ai(
            ai_lab,
            "masking",
            from_number=caller,
            send_dtmf="1",
            dtmf_delay=DTMF_DELAY,
            hangup=30.0,
            timeout=120,
        )
        await callee.wait_for_invite(timeout=5)
    assert result.answered, result.sipp_log_tail
    job = caller_event(lab, result)["job_id"]
    tool = lab.wait_event(event="tool_call", job_id=job, tool="add_participant")
    assert tool["result"] == "answered" and tool["arguments"] == {"destination": "+1510••••0177"}
    call_id = caller_event(lab, result)["caller"]["call_id"]
    async with lab_database(lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=20)
    assert any(t.name == "add_participant" for t in record.tool_calls)
    # The call's participants, named in events by identities that hold the number.
    assert any(e["identity"].startswith("sip_") for e in job_events(lab, job, "call_status"))
    written = {
        "events file": lab.events_file.read_text(errors="replace"),
        "worker log": (lab.lab.procs.logs / "agent-ai.log").read_text(errors="replace"),
        "database": await database_dump(lab),
    }
    assert job in written["worker log"] and call_id in written["database"]  # the call is there
    digits = {"caller": caller[1:], "dialled": dialled[1:]}
    leaks = [
        f"{who}'s number in the {where}"
        for where, content in written.items()
        for who, number in digits.items()
        if number in content
    ]
    assert leaks == []
