"""Every way a dialled leg can fail, on real calls: the SIP answer the far end gives maps to
the server's disconnect reason and to plain words for the caller; the call goes on, and
nothing of the failed leg is left behind once the caller hangs up."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from lab.callee import Callee
from lab.phone import CallResult
from lab.testing.calls import call_ai, caller_event, wait_room_gone
from lab.testing.fake_openai import call, say
from lab.testing.handles import AiLab
from lab.testing.records import lab_database, wait_record

pytestmark = pytest.mark.lab

# (callee mode, its final answer, reasons the server may give the leg, words the model gets)
# livekit-sip v1.8.0 (the lab's) reports a 5xx as CLIENT_INITIATED where the reference
# table says SIP_TRUNK_FAILURE: the agent acts on the SIP status, never on that reason.
FAILURES = [
    ("busy", "486 Busy Here", {"USER_REJECTED"}, "busy"),
    ("reject", "603 Decline", {"USER_REJECTED"}, "declined"),
    ("reject", "480 Temporarily Unavailable", {"USER_UNAVAILABLE"}, "Nobody answered"),
    ("reject", "503 Service Unavailable", {"SIP_TRUNK_FAILURE", "CLIENT_INITIATED"},
     "technical problem"),
]  # fmt: skip


@contextlib.asynccontextmanager
async def far_end(ai_lab: AiLab, mode: str, status: str) -> AsyncIterator[Callee]:
    async with Callee(
        mode,  # type: ignore[arg-type]  # one of CalleeMode, from the table above
        ip=ai_lab.env["LAB_PHONE_IP"], port=5070, reject_status=status,
    ) as callee:  # fmt: skip
        yield callee


@pytest.mark.parametrize(("mode", "status", "reasons", "words"), FAILURES,
                         ids=[f[1].split()[0] for f in FAILURES])  # fmt: skip
async def test_failed_leg_is_reported_and_leaves_nothing(
    ai_lab: AiLab, mode: str, status: str, reasons: set[str], words: str
) -> None:
    scenario = f"leg-{status.split()[0]}"
    ai_lab.fake.script(
        scenario,
        [call("add_participant", {"destination": "callee"}), say("Anything else I can do?")],
    )
    async with far_end(ai_lab, mode, status) as callee:
        result = await call_ai(ai_lab, scenario, hangup=6.0, timeout=40)
        assert result.answered, result.sipp_log_tail
        assert callee.invite_count >= 1, "the dial never reached the far end"
    outputs = [str(r["content"]) for r in ai_lab.fake.tool_results(scenario)]
    assert any(words in o for o in outputs), outputs
    assert result.ended_by == "caller", "a failed leg must not end the caller's call"
    await leg_left_nothing_behind(ai_lab, result, reasons)


async def leg_left_nothing_behind(ai_lab: AiLab, result: CallResult, reasons: set[str]) -> None:
    """The failed leg left with one of ``reasons``, the caller's hang-up ended everything,
    and the record is complete with the leg's end in its timeline."""
    event = caller_event(ai_lab.lab, result)
    left = ai_lab.lab.wait_event(event="participant_left", job_id=event["job_id"],
                                 identity="dialled-1")  # fmt: skip
    assert left["reason"] in reasons
    await wait_room_gone(ai_lab.lab, event["room_id"], timeout=5)
    await asyncio.to_thread(ai_lab.lab.wait_event, 10.0, event="job_ended", job_id=event["job_id"])
    async with lab_database(ai_lab.lab) as db:
        record = await wait_record(db, event["caller"]["call_id"], "complete")
    assert record.summary.disconnect_reason == "CLIENT_INITIATED"
    dials = [t for t in record.tool_calls if t.name == "add_participant"]
    assert dials and dials[0].result != "answered", dials
    assert f"dialled-1: left ({left['reason']})" in [s.status for s in record.statuses]


async def test_unreachable_trunk_is_reported_and_leaves_nothing(ai_lab: AiLab) -> None:
    """Nothing listens where the outbound trunk points (no callee runs): the INVITE is never
    answered, the caller hears that the line is not responding, and the call goes on."""
    scenario = "leg-unreachable"
    ai_lab.fake.script(
        scenario,
        [call("add_participant", {"destination": "callee"}), say("Anything else I can do?")],
    )
    result = await call_ai(ai_lab, scenario, hangup=6.0, timeout=60)
    assert result.answered, result.sipp_log_tail
    outputs = [str(r["content"]) for r in ai_lab.fake.tool_results(scenario)]
    assert any("not responding" in o for o in outputs), outputs
    assert result.ended_by == "caller", "a failed leg must not end the caller's call"
    await leg_left_nothing_behind(ai_lab, result, {"USER_UNAVAILABLE", "SIP_TRUNK_FAILURE"})
