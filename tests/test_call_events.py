"""Typed call events: the record a call's events make (written to a real SQLite database,
read back with the query API), and each event's line in the events file, which the lab
tests, the bench and operators read by name and field."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from itertools import count
from pathlib import Path
from typing import Any, get_args

import pytest
import pytest_asyncio
from livekit.agents.metrics import LLMModelUsage, TTSModelUsage

from switchboard.call import event_types as ev
from switchboard.call.dial_gate import dial_decision_event
from switchboard.call.events import EventLog
from switchboard.call.handlers import usage_fields
from switchboard.call.record import RecordSink
from switchboard.caller import Caller
from switchboard.data.db import Database, open_database
from switchboard.data.records.model import timeline
from switchboard.data.records.query import get_call
from switchboard.data.records.recorder import CallRecorder
from switchboard.dialing.policy import (
    Decision,
    DialPolicy,
    DialRequest,
    Dictated,
    PriorDials,
    decide,
)

pytestmark = pytest.mark.unit

CALLER = Caller(kind="sip", identity="sip_caller", phone_number="+15105550123", call_id="SCL_1")
LAB = DialPolicy("lab", allowed_regions=("US",), allow_caller_dictated=True)
PREMIUM = "+19005550100"
DIALLED = {"destination": "+1510••••0100"}


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield database
    finally:
        await database.close()


def decision_for(number: str, policy: DialPolicy) -> Decision:
    request = DialRequest(Dictated(number), CALLER.phone_number, "SCL_1")
    return decide(request, policy, {}, PriorDials(), 1_800_000_000.0)


def dial(number: str, policy: DialPolicy = LAB) -> ev.DialDecision:
    return dial_decision_event(decision_for(number, policy))


async def test_a_calls_events_make_its_record(db: Database, tmp_path: Path) -> None:
    ticks = (1_700_000_000.0 + i for i in count())  # one second per entry: a clear order
    sink = RecordSink(CallRecorder(db, heartbeat_s=None, clock=lambda: next(ticks)), CALLER)
    events = EventLog(tmp_path / "events.jsonl", job_id="AJ_1", room_id="RM_1")
    events.listeners.append(sink)
    sink.start(room="call-_+15105550123_x", route="support", providers={"stt": "fake"})
    for event in (
        ev.CallStatus(identity="sip_caller", status="active"),
        ev.Transcript(role="assistant", text="Hello, how can I help?"),
        ev.Transcript(role="user", text="Call +1 900 555 0100 for me."),
        dial(PREMIUM),  # refused: a premium number
        ev.ToolCalled(tool="add_participant", arguments=DIALLED, result="answered"),
        ev.CallStatus(identity="dialled-1", status="active"),
        ev.ParticipantLeft(identity="dialled-1", reason=None, action="report_leg"),
        ev.ToolCalled(tool="end_call", result="ending the call after goodbye"),
        ev.CallerLeft(reason="CLIENT_INITIATED"),
        ev.ParticipantLeft(identity="sip_caller", reason="CLIENT_INITIATED", action="end_call"),
        ev.RoomDisconnected(reason="ROOM_DELETED"),  # after the caller left: not the cause
    ):
        events.emit(event)
    await sink.finish({"models": []})

    record = await get_call(db, "SCL_1")
    assert record is not None
    assert record.summary.status == "complete"
    assert record.summary.disconnect_reason == "CLIENT_INITIATED"
    assert record.summary.caller_number == "+1510••••0123"
    assert [(t.role, t.text) for t in record.transcript] == [
        ("assistant", "Hello, how can I help?"),
        ("user", "Call +1900••••0100 for me."),  # a dictated number, masked
    ]
    calls = [(c.name, dict(c.arguments), c.result) for c in record.tool_calls]
    assert calls == [
        ("add_participant", {"policy": "lab"}, "refused: PREMIUM"),
        ("add_participant", DIALLED, "answered"),
        ("end_call", {}, "ending the call after goodbye"),
    ]
    # The caller's own status bare, a dialled leg's named, its departure with the reason.
    assert [s.status for s in record.statuses] == [
        "active",
        "dialled-1: active",
        "dialled-1: left (UNKNOWN)",
    ]
    kinds = [e.kind for e in timeline(record)]
    assert kinds == ["status", "turn", "turn", "tool", "tool", "status", "status", "tool"]


async def test_an_allowed_dial_is_no_tool_call_and_the_agents_hang_up_is_the_cause(
    db: Database,
) -> None:
    sink = RecordSink(CallRecorder(db, heartbeat_s=None), CALLER)
    sink.start(room="r", route="support", providers={})
    sink(dial("+15105550100"))  # allowed: the tool's own call reports how the dial went
    sink(ev.AgentHangup(reason="pin"))
    sink(ev.CallerLeft(reason="CLIENT_INITIATED"))
    await sink.finish(None)
    record = await get_call(db, "SCL_1")
    assert record is not None
    assert record.tool_calls == ()
    assert record.summary.disconnect_reason == "AGENT_HANGUP"


async def test_a_line_said_before_the_hang_up_stays_before_it(db: Database) -> None:
    # The framework adds the agent's last line to the conversation once it has played
    # out, after the hang-up that followed it; the timeline orders by when it was said.
    now = [1_700_000_000.0]
    sink = RecordSink(CallRecorder(db, heartbeat_s=None, clock=lambda: now[0]), CALLER)
    sink.start(room="r", route="support", providers={})
    sink(ev.CallStatus(identity="sip_caller", status="active"))
    now[0] += 2
    sink(ev.CallStatus(identity="sip_caller", status="hangup"))
    said = ev.Transcript(role="assistant", text="Goodbye.", said_at=now[0] - 1)
    sink(said)  # reported after the hang-up
    await sink.finish(None)
    record = await get_call(db, "SCL_1")
    assert record is not None
    shown = [
        getattr(e.event, "status", None) or getattr(e.event, "text", "") for e in timeline(record)
    ]
    assert shown == ["active", "Goodbye.", "hangup"]


def old_dial_line(number: str, policy: DialPolicy = LAB) -> dict[str, Any]:
    """What the events file carried for a dial decision before events were typed."""
    decision = decision_for(number, policy)
    return {"allowed": decision.allowed, **{k: v for k, v in decision.log.items() if k != "event"}}


UNSAFE = DialPolicy("unsafe", ("US",), allow_caller_dictated=True, unsafe_allow_restricted=True)
DIAL: dict[str, Any] = {
    "allowed": False,
    "reason": "PREMIUM",
    "policy": "lab",
    "call_id": "SCL_1",
    "caller": "+1510••••0123",
    "destination": None,
    "number": "+1900••••0100",
    "region": "US",
}

CONTEXT = {"job_id": "AJ_1", "room_id": "RM_1"}  # what every line of one job carries
# Each event's line as the lab tests, the bench and operators read it: name and fields.
# An event made from exactly these fields must give exactly this line.
LINES: list[tuple[Callable[..., ev.CallEvent], str, dict[str, Any]]] = [
    (
        ev.JobStarted,
        "job_started",
        {"agent_name": "switchboard", "ai_mode": "openai", "preloaded": True, "pid": 4242},
    ),
    (ev.NoCaller, "no_caller", {"reason": "no caller joined"}),
    (ev.CallerIdentified, "caller", {"caller": CALLER.log_fields()}),
    (ev.DirectoryLookup, "directory", {"status": "failed", "failure": None, "elapsed_ms": 2.5}),
    (ev.RouteChosen, "route", {"route": "lab-pin", "reason": "number", "stt_model": "nova-3"}),
    (ev.ProvidersChosen, "providers", {"stt": "a", "llm": "b", "tts": "c"}),
    (
        ev.CallResumed,
        "call_resumed",
        {
            "reason": "agent_left",
            "attempt": 1,
            "previous_job": "AJ_0",
            "record": "found",
            "route": "lab-tools",
            "turns": 4,
            "dial_attempts": 1,
            "pin_verified": False,
            "legs": 1,
        },
    ),
    (ev.ResumeDeclined, "resume_declined", {"reason": "the call was transferred"}),
    (ev.FirstWordsReady, "first_words_ready", {"source": "model", "ready_ms": 84.0}),
    (ev.SessionStarted, "session_started", {}),
    (ev.SessionClosed, "session_closed", {"reason": "user_initiated"}),
    (ev.JobEnded, "job_ended", {"reason": "room deleted"}),
    (ev.CallStatus, "call_status", {"identity": "sip_caller", "status": "hangup"}),
    (
        ev.ParticipantLeft,
        "participant_left",
        {"identity": "dialled-1", "reason": None, "action": "report_leg"},
    ),
    (ev.CallerLeft, "caller_left", {"reason": "UNKNOWN"}),
    (ev.RoomDisconnected, "room_disconnected", {"reason": "ROOM_DELETED"}),
    (ev.Transcript, "transcript", {"role": "user", "text": "hi"}),
    (ev.Transcript, "transcript", {"role": "assistant", "text": "hi", "said_at": 1.5}),
    (ev.Keypress, "keypress", {"identity": "sip_caller", "digits": "••", "ignored": False}),
    (ev.AgentSaid, "agent_said", {"text": "Goodbye."}),
    (ev.AgentHangup, "agent_hangup", {"reason": "pin"}),
    (ev.ProviderFailed, "provider_failed", {"source": "llm_error"}),
    (ev.ShutdownGoodbye, "shutdown_goodbye", {}),
    (ev.ShutdownIgnored, "shutdown_ignored", {"reason": "unsigned"}),
    (ev.PinAttempt, "pin_attempt", {"attempt": 1, "result": "wrong"}),
    (ev.PinAccepted, "pin_accepted", {"attempt": 2}),
    (ev.PinRefused, "pin_refused", {"reason": "attempts", "attempts": 3}),
    (ev.PinLockout, "pin_lockout", {"until": 1_800_000_900.0, "seconds": 900.0, "lockouts": 1}),
    (ev.PinLockedOut, "pin_locked_out", {"until": 1_800_000_900.0}),
    (ev.PinLockoutEnded, "pin_lockout_ended", {"ended_at": 1_800_000_900.0}),
    (
        ev.ToolCalled,
        "tool_call",
        {"tool": "send_dtmf", "arguments": {"digits": "•••"}, "result": "sent"},
    ),
    (ev.ToolCalled, "tool_call", {"tool": "end_call", "result": "ending"}),  # no "arguments"
    (ev.ToolFailed, "tool_error", {"tool": "list_participants"}),
    (ev.DialDecision, "dial_decision", DIAL),
]


def line_of(event: ev.CallEvent, path: Path) -> dict[str, Any]:
    EventLog(path, **CONTEXT).emit(event)
    [line] = [json.loads(text) for text in path.read_text().splitlines()]
    assert isinstance(line.pop("ts"), float)
    return dict(line)


@pytest.mark.parametrize(("kind", "name", "fields"), LINES)
def test_each_events_line_keeps_its_name_and_fields(
    kind: Callable[..., ev.CallEvent], name: str, fields: dict[str, Any], tmp_path: Path
) -> None:
    line = line_of(kind(**fields), tmp_path / "events.jsonl")
    assert line == {"event": name, **CONTEXT, **fields}


@pytest.mark.parametrize(
    "event",
    [
        ev.CallStatus(identity="sip_+447700900123", status="active"),
        ev.ParticipantLeft(identity="sip_+447700900123", reason=None, action="end_call"),
        ev.Keypress(identity="sip_+447700900123", digits="•", ignored=False),
        ev.Transcript(role="user", text="Please call 07700 900123."),
        ev.ToolCalled(
            tool="add_participant", arguments={"destination": "+447700900123"}, result="ok"
        ),
    ],
    ids=lambda e: e.name,
)
def test_no_line_carries_a_full_number(event: ev.CallEvent, tmp_path: Path) -> None:
    line = json.dumps(line_of(event, tmp_path / "events.jsonl"), ensure_ascii=False)
    assert "••••0123" in line  # masked, not dropped
    assert "7700900123" not in line.replace(" ", "")


def test_a_masked_identity_is_still_the_callers_for_the_listeners() -> None:
    # The event keeps the identity (the record compares it with the caller's); only its
    # line is masked.
    assert ev.CallStatus(identity="sip_+447700900123", status="x").identity == "sip_+447700900123"


def test_every_event_type_has_its_line_checked() -> None:
    assert {kind for kind, _, _ in LINES} == set(get_args(ev.CallEvent))
    names = [kind.name for kind in get_args(ev.CallEvent)]
    assert len(names) == len(set(names)), "two event types share a name"


@pytest.mark.parametrize(
    ("number", "policy"),
    [(PREMIUM, LAB), ("+15105550100", LAB), (PREMIUM, UNSAFE)],
    ids=["refused", "allowed", "unsafe-override"],
)
def test_a_dial_decisions_line_is_the_policys_log(
    number: str, policy: DialPolicy, tmp_path: Path
) -> None:
    line = line_of(dial(number, policy), tmp_path / "events.jsonl")
    assert line == {"event": "dial_decision", **CONTEXT, **old_dial_line(number, policy)}


def test_a_refused_dial_reads_as_the_lab_expects() -> None:
    assert dial(PREMIUM) == ev.DialDecision(**DIAL)
    assert old_dial_line(PREMIUM, UNSAFE)["unsafe_override"] == "UNSAFE_ALLOW_RESTRICTED_NUMBERS"


def test_usage_is_recorded_as_objects_not_reprs() -> None:
    llm = LLMModelUsage(provider="openai", model="gpt-4.1-mini", input_tokens=12)
    tts = TTSModelUsage(provider="espeak-ng", model="es", characters_count=40)
    assert usage_fields(llm) == {
        "type": "llm_usage",
        "provider": "openai",
        "model": "gpt-4.1-mini",
        "input_tokens": 12,
    }
    assert json.loads(json.dumps(usage_fields(tts)))["characters_count"] == 40
