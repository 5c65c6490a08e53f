"""Disconnect reasons on real calls: every leg ends cleanly, nothing is left behind."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from livekit import api

from lab.callee import Callee
from lab.phone import place_call
from lab.testing.calls import agent_speaking, call_ai, caller_event, rooms, wait_room_gone
from lab.testing.fake_openai import call, say
from lab.testing.handles import AiLab, LabHandle
from lab.testing.records import lab_database, wait_record

pytestmark = pytest.mark.lab


async def test_dialled_party_hanging_up_is_reported_and_the_call_goes_on(ai_lab: AiLab) -> None:
    ai_lab.fake.script(
        "leg-hangs-up",
        [
            call("add_participant", {"destination": "callee"}),
            say("They are on the call now."),
            say("I'm sorry, they have hung up. Can I help with anything else?"),
        ],
    )
    phone_ip = ai_lab.env["LAB_PHONE_IP"]
    async with Callee("answer_then_hangup", ip=phone_ip, port=5070, hangup_after_ms=1500):
        result = await call_ai(ai_lab, "leg-hangs-up", hangup=8.0, timeout=40)
    assert result.answered
    event = caller_event(ai_lab.lab, result)
    left = ai_lab.lab.wait_event(event="participant_left", job_id=event["job_id"],
                                 identity="dialled-1")  # fmt: skip
    assert left["reason"] == "CLIENT_INITIATED"
    assert left["action"] == "report_leg"
    # The agent was asked to tell the caller (the model got the news), and spoke after.
    told = [r for r in ai_lab.fake.requests if "has hung up" in json.dumps(r.body)]
    assert told, "the model was never told that the dialled party left"
    spoke_after = [
        e for e in ai_lab.lab.events()
        if e["event"] == "transcript" and e["job_id"] == event["job_id"]
        and e["role"] == "assistant" and e["ts"] > left["ts"]
    ]  # fmt: skip
    assert spoke_after, "the agent said nothing after the dialled party left"
    assert result.ended_by == "caller", "the call went on after the dialled party left"


async def test_no_answer_is_reported_in_plain_words(ai_lab: AiLab) -> None:
    ai_lab.fake.script("no-answer", [call("add_participant", {"destination": "callee"})])
    async with Callee("no_answer", ip=ai_lab.env["LAB_PHONE_IP"], port=5070) as callee:
        result = await call_ai(ai_lab, "no-answer", hangup=9.0, timeout=40)
        assert result.answered
        await callee.wait_for_request("CANCEL", timeout=15)
    # A slow tool first gets the framework's "still in progress" placeholder; the real
    # outcome follows as a later tool result.
    outputs = [str(r["content"]) for r in ai_lab.fake.tool_results("no-answer")]
    assert any("Nobody answered" in o for o in outputs), outputs


async def test_caller_hanging_up_while_the_dialled_leg_rings_cancels_it(ai_lab: AiLab) -> None:
    ai_lab.fake.script(
        "hangup-while-ringing",
        [call("add_participant", {"destination": "callee"}, text="Calling them now.")],
    )
    async with Callee("no_answer", ip=ai_lab.env["LAB_PHONE_IP"], port=5070) as callee:
        result = await call_ai(ai_lab, "hangup-while-ringing", hangup=1.0, timeout=30)
        assert result.ended_by == "caller"
        await callee.wait_for_invite(timeout=10)
        # No orphan call: the ringing leg is cancelled once the caller is gone.
        await callee.wait_for_request("CANCEL", timeout=10)
    event = caller_event(ai_lab.lab, result)
    await wait_room_gone(ai_lab.lab, event["room_id"], timeout=5)


async def test_operator_deleting_the_room_ends_the_call_and_the_job(lab: LabHandle) -> None:
    number = "+15105557777"  # used by no other test: it finds this call's events
    started = time.time()
    call_task = asyncio.create_task(
        place_call(
            sip_host=lab.env["SIP_HOST"], sip_port=int(lab.env["SIP_PORT"]),
            to_number=lab.env["LAB_INBOUND_NUMBER"], from_number=number,
            local_ip=lab.env["LAB_PHONE_IP"], hangup="remote", timeout=40,
        )
    )  # fmt: skip

    speaking = await agent_speaking(lab, started, number)
    room_name = (await rooms(lab))[speaking["room_id"]]
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        await lk.room.delete_room(api.DeleteRoomRequest(room=room_name))
    result = await call_task
    assert result.ended_by == "remote", "the caller should get a BYE when the room goes"
    job = speaking["job_id"]
    gone = await asyncio.to_thread(lab.wait_event, 10.0, event="room_disconnected", job_id=job)
    assert gone["reason"] == "ROOM_DELETED"
    # The job ends (its exact shutdown wording depends on which side noticed first).
    await asyncio.to_thread(lab.wait_event, 10.0, event="job_ended", job_id=job)


async def test_caller_hanging_up_during_a_transfer_ends_everything(ai_lab: AiLab) -> None:
    ai_lab.fake.script("transfer-hangup", [call("transfer_call", {"destination": "desk"})])
    result = await call_ai(
        ai_lab, "transfer-hangup", hangup="remote", on_refer="hangup", timeout=40
    )
    assert result.answered, result.sipp_log_tail
    assert result.refer_to is not None, "the transfer never reached the caller"
    event = caller_event(ai_lab.lab, result)
    await wait_room_gone(ai_lab.lab, event["room_id"], timeout=10)
    await asyncio.to_thread(ai_lab.lab.wait_event, 10.0, event="job_ended", job_id=event["job_id"])
    async with lab_database(ai_lab.lab) as db:
        record = await wait_record(db, event["caller"]["call_id"], "complete")
    # The REFER was accepted (livekit-sip v1.8.0 reports success on the 202), then the
    # caller hung up: the record has both, and the call is over for everyone.
    assert [t.result for t in record.tool_calls if t.name == "transfer_call"] == ["transferred"]
    assert record.summary.disconnect_reason == "CLIENT_INITIATED"
    assert record.statuses[-1].status == "hangup"


async def test_a_job_without_a_caller_ends_after_the_timeout(lab: LabHandle) -> None:
    """Dispatched to a room no caller ever joins (or the caller hung up while it rang):
    the job waits SWITCHBOARD_PARTICIPANT_TIMEOUT, says why in the log, and ends."""
    room = f"no-caller-{uuid.uuid4().hex[:8]}"
    async with api.LiveKitAPI(
        lab.http_url, lab.env["LIVEKIT_API_KEY"], lab.env["LIVEKIT_API_SECRET"]
    ) as lk:
        created = await lk.room.create_room(api.CreateRoomRequest(name=room))
        await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=lab.env["LAB_AGENT_NAME"], room=room)
        )
    started = await asyncio.to_thread(lab.wait_event, 20.0, event="job_started",
                                      room_id=created.sid)  # fmt: skip
    # Whichever comes first, the caller timeout (20 s) or the server closing the empty room
    # (the lab's empty_timeout), the job says why and ends.
    gave_up = await asyncio.to_thread(lab.wait_event, 40.0, event="no_caller",
                                      job_id=started["job_id"])  # fmt: skip
    assert gave_up["reason"] in ("no caller joined within 20 s",
                                 "the room closed before a caller joined")  # fmt: skip
    await asyncio.to_thread(lab.wait_event, 15.0, event="job_ended", job_id=started["job_id"])
    await wait_room_gone(lab, created.sid, timeout=10)
