"""The first real call: a sipp phone calls the lab's number, the agent answers, greets,
and nothing is left behind when the call ends."""

from __future__ import annotations

import pytest

from lab.testing.calls import call_lab, caller_event, wait_room_gone
from lab.testing.handles import LabHandle
from lab.testing.records import lab_database, wait_record
from switchboard.config.prompts import load_prompts
from switchboard.data.records.model import timeline
from switchboard.numbers import mask_number

pytestmark = pytest.mark.lab


async def test_call_is_answered_by_the_agent_which_sees_every_attribute(lab: LabHandle) -> None:
    result = await call_lab(
        lab, headers={"X-Customer-Id": "cust-42", "X-Lang": "es"}, hangup=0.5, timeout=30
    )
    assert result.answered, result.sipp_log_tail
    assert result.final_status == 200

    seen = caller_event(lab, result)["caller"]
    assert seen["kind"] == "sip"
    assert seen["phone_number"] == mask_number("+442071234567")
    assert seen["called_number"] == lab.env["LAB_INBOUND_NUMBER"]
    assert seen["call_id"].startswith("SCL_")
    assert seen["trunk_id"] == lab.env["LAB_INBOUND_TRUNK_ID"]
    assert seen["rule_id"] == lab.env["LAB_DISPATCH_RULE_ID"]
    assert seen["custom"] == {"customer_id": "cust-42", "lang": "es"}


async def test_the_call_process_runs_on_code_the_forkserver_loaded(lab: LabHandle) -> None:
    # Importing agent.py again in each call's process cost seconds per call, and a burst
    # overran the framework's process start timeout (switchboard/worker.py).
    result = await call_lab(lab, hangup=0.5, timeout=30)
    assert result.answered, result.sipp_log_tail
    job_id = caller_event(lab, result)["job_id"]
    assert lab.wait_event(event="job_started", job_id=job_id)["preloaded"] is True


async def test_caller_hears_the_greeting(lab: LabHandle) -> None:
    result = await call_lab(lab, hangup=1.0, timeout=30)
    assert result.answered, result.sipp_log_tail
    assert result.first_audio_at is not None, "no non-silent audio reached the caller"
    assert result.time_to_first_audio is not None and result.time_to_first_audio < 5
    assert result.received_audio_seconds > 1.0


async def test_caller_hangup_removes_the_room_and_ends_the_job(lab: LabHandle) -> None:
    result = await call_lab(lab, hangup=0.5, timeout=30)
    assert result.ended_by == "caller"
    event = caller_event(lab, result)
    left = lab.wait_event(event="caller_left", job_id=event["job_id"])
    assert left["reason"] == "CLIENT_INITIATED"
    lab.wait_event(event="job_ended", job_id=event["job_id"], timeout=5)
    await wait_room_gone(lab, event["room_id"], timeout=5)


async def test_keyless_agent_says_it_is_unavailable_and_hangs_up(lab: LabHandle) -> None:
    result = await call_lab(lab, hangup="remote", timeout=60)
    assert result.answered, result.sipp_log_tail
    assert result.ended_by == "remote", "the agent should hang up after its message"
    assert result.received_audio_seconds > 3.0  # the whole message, not a cut-off
    event = caller_event(lab, result)
    said = lab.wait_event(event="agent_said", job_id=event["job_id"])
    assert "not available" in said["text"]
    lab.wait_event(event="agent_hangup", job_id=event["job_id"])
    await wait_room_gone(lab, event["room_id"], timeout=5)


async def test_a_keyless_spanish_caller_hears_spanish_and_the_record_keeps_the_order(
    lab: LabHandle,
) -> None:
    # The shipped routes send X-Lang: es to the Spanish route: its keyless text, not the
    # English one read by a Spanish voice.
    spanish = load_prompts()["keyless_es"]
    result = await call_lab(lab, headers={"X-Lang": "es"}, hangup="remote", timeout=60)
    assert result.answered, result.sipp_log_tail
    assert result.ended_by == "remote"
    event = caller_event(lab, result)
    said = lab.wait_event(event="agent_said", job_id=event["job_id"])
    assert said["text"] == spanish
    async with lab_database(lab) as db:
        record = await wait_record(db, event["caller"]["call_id"], "complete", timeout=15)
    assert record.summary.route == "spanish"
    assert record.summary.disconnect_reason == "AGENT_HANGUP"
    # The agent's line where it was said: after the answer, before any hang-up.
    entries = [
        getattr(e.event, "text", None) or getattr(e.event, "status", "") for e in timeline(record)
    ]
    before = entries[: entries.index(spanish)]
    assert "active" in before and not any(str(e).startswith("hangup") for e in before), entries
