"""Keypad menus on real calls: a keyless worker (no AI at all) answers the lab's menu
number, and every call gets its route's menu (lab/routes.toml, lab/policy.toml); the AI
worker's route ``lab-menu-fault`` plays the same menu when every model fails mid-call.

Key 1 names "sales", a warm destination: the person is dialled into the caller's room and
the two talk directly. Key 2 names "desk", a cold one: a REFER to the caller's phone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lab.audio import PT_PCMU, SILENCE_RMS, silence_pcmu, tone_pcmu
from lab.callee import Callee
from lab.phone import CallResult
from lab.stack import ROOT
from lab.testing.calls import call_ai, call_lab, caller_event, wait_room_gone
from lab.testing.handles import AiLab, LabHandle
from lab.testing.records import lab_database, wait_record

pytestmark = pytest.mark.lab

SALES = "+15105550196"
DESK = "+15105550198"
MENU = "Press 1 for sales. Press 2 for desk. Press 0 to repeat."
GOODBYE = "Sorry, I did not get a choice. Goodbye."
SLOW = 60.0
# The caller's audio: a 0.4 s tone every 2 s, to find it again in what comes back.
PULSE_PERIOD_S, PULSE_S = 2.0, 0.4
LISTEN_S = 10.0


@pytest.fixture(scope="module")
def menu_lab(lab: LabHandle) -> Iterator[LabHandle]:
    """The lab plus a keyless worker that answers the menu number (LAB_MENU_NUMBER)."""
    lab.lab.start_agent(
        "start",
        name="agent-menu",
        env={
            "SWITCHBOARD_AGENT_NAME": lab.env["LAB_MENU_AGENT_NAME"],
            "SWITCHBOARD_AI_MODE": "keyless",
            "SWITCHBOARD_WORKER_PORT": "0",
            "SWITCHBOARD_ROUTES": str(ROOT / "lab/routes.toml"),
            "SWITCHBOARD_POLICY": str(ROOT / "lab/policy.toml"),
            "SWITCHBOARD_OUTBOUND_TRUNK_ID": lab.env["LAB_OUTBOUND_TRUNK_ID"],
            "SWITCHBOARD_RING_TIMEOUT": "6",
            "LAB_TEST_PIN": "48151623",  # lab/routes.toml's PIN route needs it set
        },
    )
    try:
        yield lab
    finally:
        lab.lab.procs.stop("agent-menu")


def pulses(seconds: float) -> bytes:
    one = tone_pcmu(PULSE_S, freq=1000.0) + silence_pcmu(PULSE_PERIOD_S - PULSE_S)
    return one * int(seconds / PULSE_PERIOD_S)


def echo_delays(result: CallResult, since: float) -> list[float]:
    """Round trips of the caller's pulses that came back after ``since``: each loud onset
    heard, against the pulse sent before it (pulses start at the answer, every period)."""
    assert result.answered_at is not None
    loud = [a.at for a in result.arrivals
            if a.payload_type == PT_PCMU and a.rms > SILENCE_RMS and a.at > since]  # fmt: skip
    onsets = [t for i, t in enumerate(loud) if i == 0 or t - loud[i - 1] > 0.5]
    return [(t - result.answered_at) % PULSE_PERIOD_S for t in onsets]


async def event_since(lab: LabHandle, since: float, **match: Any) -> dict[str, Any]:
    deadline = time.monotonic() + SLOW
    while time.monotonic() < deadline:
        for e in lab.events():
            if e["ts"] >= since and all(e.get(k) == v for k, v in match.items()):
                return e
        await asyncio.sleep(0.1)
    raise AssertionError(f"no event {match} within {SLOW}s")


def job_events(lab: LabHandle, job_id: str, name: str) -> list[dict[str, Any]]:
    return [e for e in lab.events() if e["event"] == name and e.get("job_id") == job_id]


async def record_results(lab: LabHandle, call_id: str) -> list[tuple[str, str]]:
    async with lab_database(lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=SLOW)
    return [(c.name, str(c.result)) for c in record.tool_calls]


async def test_key_1_connects_the_caller_with_the_person_behind_sales(
    menu_lab: LabHandle,
) -> None:
    lab = menu_lab
    # The person's phone sends back all it hears: the caller's pulses return only if
    # both directions carry audio, and their round trip is the call's mouth-to-ear x 2.
    person = Callee("answer", ip=lab.env["LAB_PHONE_IP"], port=5070, rtp_echo=True)
    hang_up = asyncio.Event()
    since = time.time()
    async with person:
        placed = asyncio.create_task(call_lab(
            lab, to_number=lab.env["LAB_MENU_NUMBER"], send_dtmf="1", dtmf_delay=2.0,
            send_audio=pulses(80), hangup="remote", hangup_now=hang_up, timeout=120))  # fmt: skip
        invite = await person.wait_for_invite(timeout=SLOW)
        assert invite.uri_user == SALES
        await event_since(lab, since, event="tool_call", result="warm_transferred: dialled_in")
        # Not a wait for anything: the window in which the caller's pulses are measured.
        await asyncio.sleep(LISTEN_S)
        hang_up.set()  # the caller hangs up: the person must get a BYE
        result = await placed
        await person.wait_for_request("BYE", timeout=20)
    assert result.ended_by == "caller", result.sipp_log_tail
    event = caller_event(lab, result)
    delays = echo_delays(result, invite.at + 2.0)
    assert len(delays) >= 3, f"the caller's pulses did not come back: {delays}"
    print(f"\nmenu dial-in (same room) round trip: {sorted(delays)}")
    await wait_room_gone(lab, event["room_id"], timeout=10)
    results = await record_results(lab, event["caller"]["call_id"])
    assert ("menu", "1 → sales") in results
    assert ("transfer_call", "warm_transferred: dialled_in") in results
    # After the "connecting you", the agent says nothing more.
    said = [e["text"] for e in job_events(lab, event["job_id"], "agent_said")]
    assert said[-1].startswith("Connecting you to sales"), said


async def test_no_key_hears_the_menu_twice_then_a_goodbye(menu_lab: LabHandle) -> None:
    lab = menu_lab
    result = await call_lab(lab, to_number=lab.env["LAB_MENU_NUMBER"], hangup="remote", timeout=90)
    assert result.answered and result.ended_by == "remote", result.sipp_log_tail
    event = caller_event(lab, result)
    said = [e["text"] for e in job_events(lab, event["job_id"], "agent_said")]
    assert said == [MENU, MENU, GOODBYE]
    lab.wait_event(event="agent_hangup", job_id=event["job_id"])
    await wait_room_gone(lab, event["room_id"], timeout=10)
    assert ("menu", "no choice") in await record_results(lab, event["caller"]["call_id"])


async def test_a_key_the_policy_refuses_is_never_dialled(menu_lab: LabHandle) -> None:
    lab = menu_lab
    person = Callee("answer", ip=lab.env["LAB_PHONE_IP"], port=5070)
    async with person:
        result = await call_lab(
            lab, to_number=lab.env["LAB_MENU_NUMBER"], headers={"X-Scenario": "menu-refused"},
            send_dtmf="1", dtmf_delay=2.0, hangup="remote", timeout=90)  # fmt: skip
        assert person.invite_count == 0, "a refused destination was dialled"
    assert result.answered and result.ended_by == "remote", result.sipp_log_tail
    assert result.refer_to is None
    event = caller_event(lab, result)
    refused = job_events(lab, event["job_id"], "dial_decision")
    assert refused and not any(d["allowed"] for d in refused)
    said = [e["text"] for e in job_events(lab, event["job_id"], "agent_said")]
    assert "Sorry, sales cannot be reached right now." in said
    assert said[-1] == GOODBYE


async def test_providers_failing_mid_call_give_the_menu_and_a_way_through(ai_lab: AiLab) -> None:
    ai_lab.fake.fail_next(20, status=503)  # every model, every retry
    try:
        # "2" (desk, cold) goes out once the failure has turned the call over to the menu.
        result = await call_ai(ai_lab, "menu-fault", send_dtmf="2", dtmf_delay=14.0,
                               hangup="remote", timeout=90)  # fmt: skip
    finally:
        ai_lab.fake.fail_next(0)
    assert result.answered, result.sipp_log_tail
    assert result.refer_to is not None and DESK in result.refer_to, result.sipp_log_tail
    lab = ai_lab.lab
    event = caller_event(lab, result)
    lab.wait_event(event="provider_failed", job_id=event["job_id"])
    said = [e["text"] for e in job_events(lab, event["job_id"], "agent_said")]
    assert MENU in said
    results = await record_results(lab, event["caller"]["call_id"])
    assert ("menu", "2 → desk") in results
    assert ("transfer_call", "transferred") in results
