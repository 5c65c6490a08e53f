"""A resumed call's decisions (``switchboard.call.resume``): the guardian's metadata read
strictly (it is untrusted), what a call's record carries over to the job that takes it
back, and the record continued by that job instead of a second one."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import given, strategies as st
from livekit import rtc

from switchboard.call import event_types as ev
from switchboard.call.events import EventLog
from switchboard.call.flow import Call, CallConfig, prepare_call
from switchboard.call.record import DIAL_ALLOWED, PIN_VERIFIED, Continuation, RecordSink
from switchboard.call.resume import (
    AGENT_DONE_KEY,
    GUARDIAN,
    MAX_METADATA,
    CallOver,
    NormalCall,
    Restored,
    ResumeRequest,
    agent_done_metadata,
    apologises,
    chat_context,
    for_caller,
    legs_still_here,
    parse_resume,
    pick_route,
    read_record,
    restore_from,
    resume_request,
    resume_status,
    resumed_line,
)
from switchboard.caller import Caller
from switchboard.config.pins import read_pins
from switchboard.config.policy import load_policy
from switchboard.config.prompts import Prompts, load_prompts
from switchboard.config.routes import load_routes
from switchboard.config.settings import load_settings
from switchboard.data.db import Database, create_database, open_database
from switchboard.data.records.model import (
    CallRecord,
    CallSummary,
    StatusChange,
    ToolCall,
    Turn,
    timeline,
)
from switchboard.data.records.query import get_call
from switchboard.data.records.recorder import CallRecorder
from switchboard.dialing.policy import (
    DialHistory,
    DialPolicy,
    DialRequest,
    Dictated,
    Reason,
    decide,
)
from switchboard.guardian import room
from switchboard.routing import Match, Route, RouteTable
from tests.call_fakes import Job, Participant, Room

pytestmark = pytest.mark.unit

CALLER = Caller(kind="sip", identity="sip_caller", phone_number="+15105550123", call_id="SCL_1")
GOOD: dict[str, Any] = {
    "by": GUARDIAN,
    "resume": True,
    "reason": "agent_left",
    "attempt": 1,
    "since": 1795950483.012,
    "call_id": "SCL_1",
    "previous_job": "AJ_old",
}


def meta(**changes: Any) -> str:
    data = {**GOOD, **changes}
    return json.dumps({k: v for k, v in data.items() if v is not ...})


# --- the guardian's metadata -------------------------------------------------------------


def test_the_guardians_metadata_asks_for_a_resume() -> None:
    assert parse_resume(meta(extra={"ignored": True})) == ResumeRequest(
        reason="agent_left", attempt=1, since=1795950483.012, call_id="SCL_1", previous_job="AJ_old"
    )
    assert parse_resume(meta(previous_job=...)) == ResumeRequest(
        "agent_left", 1, 1795950483.012, "SCL_1", None
    )


@pytest.mark.parametrize("metadata", [None, "", meta(resume=False, reason="no_agent")])
def test_no_resume_asked_is_a_normal_call_without_a_word(metadata: str | None) -> None:
    assert parse_resume(metadata) == NormalCall()


@pytest.mark.parametrize(
    "metadata",
    [
        "{not json",
        "[1, 2]",
        '"resume"',
        meta(by="someone-else"),
        meta(by=...),
        meta(resume="true"),  # only JSON true
        meta(resume=1),
        meta(reason=...),
        meta(reason="Agent Left"),
        meta(reason="agent_left; drop table calls"),
        meta(reason="a" * 40),
        meta(reason=7),
        meta(attempt=True),  # a bool is no count
        meta(attempt=0),
        meta(attempt=-1),
        meta(attempt=10**9),
        meta(attempt="1"),
        meta(attempt=1.0),
        meta(since="yesterday"),
        meta(since=False),
        meta(since=-5),
        meta(since=...),
        '{"by": "switchboard-guardian", "resume": true, "reason": "agent_left", "attempt": 1,'
        ' "since": NaN, "call_id": "SCL_1"}',  # Python's JSON reads NaN and Infinity
        '{"by": "switchboard-guardian", "resume": true, "reason": "agent_left", "attempt": 1,'
        ' "since": Infinity, "call_id": "SCL_1"}',
        meta(call_id=...),
        meta(call_id=""),
        meta(call_id="SCL 1"),
        meta(call_id="../SCL_1"),
        meta(call_id="S" * 129),
        meta(call_id=["SCL_1"]),
        meta(previous_job={"id": "AJ_old"}),
        meta(previous_job="AJ old\n"),
        meta(padding="x" * MAX_METADATA),
    ],
)
def test_odd_metadata_makes_a_normal_call_and_says_why(metadata: str) -> None:
    parsed = parse_resume(metadata)
    assert isinstance(parsed, NormalCall) and parsed.why, parsed


@given(st.text(max_size=300) | st.binary(max_size=300).map(lambda b: b.decode("latin-1")))
def test_no_text_breaks_the_parser(metadata: str) -> None:
    parsed = parse_resume(metadata)
    assert isinstance(parsed, NormalCall | ResumeRequest)


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)
# Each key gets a plausible value (one of the guardian's) or any JSON at all.
FIELDS = st.dictionaries(
    st.sampled_from([*sorted(GOOD), "x"]), st.sampled_from(list(GOOD.values())) | JSON_VALUES
)


@given(FIELDS)
def test_any_json_shape_is_parsed_or_refused(data: dict[str, Any]) -> None:
    parsed = parse_resume(json.dumps(data))
    if isinstance(parsed, ResumeRequest):
        assert data["by"] == GUARDIAN and data["resume"] is True
        assert math.isfinite(parsed.since) and parsed.call_id == data["call_id"]


def test_a_resume_must_name_the_rooms_own_caller() -> None:
    request = parse_resume(meta())
    assert for_caller(request, CALLER) == request
    other = for_caller(parse_resume(meta(call_id="SCL_2")), CALLER)
    assert isinstance(other, NormalCall) and "another call" in other.why
    web = Caller(kind="standard", identity="web")
    assert isinstance(for_caller(request, web), NormalCall)
    no_id = Caller(kind="sip", identity="sip_caller", phone_number="+15105550123")
    assert isinstance(for_caller(request, no_id), NormalCall)
    assert for_caller(NormalCall("odd"), CALLER) == NormalCall("odd")


def test_an_ignored_resume_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert resume_request(meta(call_id="SCL_2"), CALLER) is None
    assert "another call" in caplog.text
    caplog.clear()
    assert resume_request("", CALLER) is None
    assert caplog.text == ""
    assert resume_request(meta(), CALLER) == parse_resume(meta())


# --- what the record carries over ----------------------------------------------------------


def record_of(
    *,
    statuses: tuple[str, ...] = ("active",),
    transcript: tuple[Turn, ...] = (),
    tools: tuple[ToolCall, ...] = (),
    status: str = "in_progress",
    route: str | None = "support",
    reason: str | None = None,
) -> CallRecord:
    summary = CallSummary(
        call_id="SCL_1",
        room="call-_+1510••••0123_x",
        route=route,
        caller_number="+1510••••0123",
        called_number="+15105550100",
        started_at=1_700_000_000.0,
        answered_at=1_700_000_001.0,
        ended_at=None,
        status=status,  # type: ignore[arg-type]
        disconnect_reason=reason,
        turns=len(transcript),
    )
    return CallRecord(
        summary=summary,
        statuses=tuple(StatusChange(s, 1_700_000_002.0 + i) for i, s in enumerate(statuses)),
        transcript=transcript,
        tool_calls=tools,
        providers={"stt": "fake", "nested": {"a": [1, 2]}},
        usage={},
        heartbeat_at=1_700_000_010.0,
    )


TURNS = (
    Turn("assistant", "Hello, how can I help?", 1_700_000_003.0),
    Turn("user", "Add sales to the call.", 1_700_000_004.0),
    Turn("assistant", "Sales is on the line.", 1_700_000_005.0),
)


def test_no_record_resumes_without_history_and_asks_the_pin_again() -> None:
    assert restore_from(None) == Restored()
    assert Restored().pin_verified is False


def test_the_record_gives_route_transcript_dials_and_pin() -> None:
    record = record_of(
        statuses=("active", DIAL_ALLOWED, "dialled-1: active", PIN_VERIFIED, DIAL_ALLOWED),
        transcript=(*TURNS, Turn("system", "not the caller's", 1_700_000_006.0)),
    )
    assert restore_from(record) == Restored(
        route="support", transcript=TURNS, dial_attempts=2, pin_verified=True
    )


@pytest.mark.parametrize(
    "statuses",
    [
        ("active",),
        ("active", "sip_x: pin verified"),  # another participant's status, named
        ("active", "Pin Verified"),
        ("active", "pin verified (maybe)"),
    ],
)
def test_the_pin_counts_as_verified_only_when_the_record_says_so(
    statuses: tuple[str, ...],
) -> None:
    restored = restore_from(record_of(statuses=statuses))
    assert isinstance(restored, Restored) and restored.pin_verified is False


def test_dials_count_from_the_gate_or_the_tool_whichever_says_more() -> None:
    answered = ToolCall("add_participant", {"destination": "sales"}, "answered", 1.0)
    busy = ToolCall("add_participant", {"destination": "sales"}, "busy", 2.0)
    refused = ToolCall("add_participant", {"policy": "lab"}, "refused: PREMIUM", 3.0)
    # A record written before the gate noted its dials: the tool's calls still count.
    older = restore_from(record_of(tools=(answered, busy, refused)))
    assert isinstance(older, Restored) and older.dial_attempts == 2
    # A dial under way when the job died: the gate noted it, the tool never reported.
    under_way = restore_from(record_of(statuses=(DIAL_ALLOWED, DIAL_ALLOWED), tools=(answered,)))
    assert isinstance(under_way, Restored) and under_way.dial_attempts == 2


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (record_of(status="complete", reason="CLIENT_INITIATED"), "ended"),
        (record_of(statuses=("active", "hangup")), "hung up"),
        (record_of(tools=(ToolCall("transfer_call", {}, "transferred", 1.0),)), "transferred"),
        (record_of(tools=(ToolCall("transfer_call", {}, "warm_transferred", 1.0),)), "transferred"),
    ],
)
def test_a_call_over_is_not_resumed(record: CallRecord, why: str) -> None:
    outcome = restore_from(record)
    assert isinstance(outcome, CallOver) and why in outcome.why


def test_a_failed_transfer_leaves_the_call_to_resume() -> None:
    failed = ToolCall("transfer_call", {}, "warm_failed: no_answer", 1.0)
    assert isinstance(restore_from(record_of(tools=(failed,))), Restored)
    # an incomplete record (stale heartbeat): the job died, the call may well go on
    assert isinstance(restore_from(record_of(status="incomplete")), Restored)


def test_the_transcript_becomes_the_models_context_bounded() -> None:
    ctx = chat_context(TURNS)
    messages = [(m.role, m.text_content) for m in ctx.messages()]
    assert messages == [(t.role, t.text) for t in TURNS]
    latest = [m.text_content for m in chat_context(TURNS, max_turns=2).messages()]
    assert latest == [t.text for t in TURNS[-2:]]
    assert chat_context(TURNS, max_turns=0).messages() == []
    odd = (Turn("tool", "x", 1.0), Turn("user", "", 2.0))
    assert chat_context(odd).messages() == []


def route(name: str, language: str = "en-US", **match: Any) -> Route:
    return Route(name=name, language=language, match=Match(**match))


TABLE = RouteTable(
    (
        route("support", called_number="+15105550100"),
        route("sales", language="es-MX"),
        route("default"),
    )
)


def test_the_route_is_the_records_when_it_differs(caplog: pytest.LogCaptureFixture) -> None:
    support, sales, default = TABLE.routes
    assert pick_route(support, TABLE, "support") is support
    assert pick_route(support, TABLE, None) is support
    assert pick_route(default, TABLE, "sales") is sales
    assert "'sales' before" in caplog.text
    assert pick_route(default, TABLE, "gone") is default  # no such route any more


def test_the_resumed_line_is_in_the_routes_language_when_there_is_one() -> None:
    prompts = load_prompts()
    assert resumed_line(prompts, TABLE.routes[0]).startswith("Sorry, we were cut off.")
    assert resumed_line(prompts, TABLE.routes[1]) == prompts["resumed_es"]
    french = Prompts(prompts.folder, {"resumed": "Sorry."})
    assert resumed_line(french, route("fr", language="fr-FR")) == "Sorry."


async def test_a_slow_or_broken_record_read_resumes_without_history() -> None:
    never: asyncio.Future[CallRecord | None] = asyncio.get_running_loop().create_future()
    assert await read_record(never, 0.01) == (None, "unavailable")
    broken: asyncio.Future[CallRecord | None] = asyncio.get_running_loop().create_future()
    broken.set_exception(OSError("database is down"))
    assert await read_record(broken, 1.0) == (None, "unavailable")
    none: asyncio.Future[CallRecord | None] = asyncio.get_running_loop().create_future()
    none.set_result(None)
    assert await read_record(none, 1.0) == (None, "none")
    never.cancel()


def test_dials_carried_over_count_against_the_per_call_limit() -> None:
    policy = DialPolicy("lab", allowed_regions=("US",), allow_caller_dictated=True)
    request = DialRequest(Dictated("+15105550100"), CALLER.phone_number, "SCL_1")
    history, now = DialHistory(), time.time()
    assert decide(request, policy, {}, history.view(None, "SCL_1", now), now).allowed
    history.carry_over("SCL_1", 1, now)  # the lost job placed one: the limit is one
    refused = decide(request, policy, {}, history.view(None, "SCL_1", now), now)
    assert (refused.allowed, refused.reason) == (False, Reason.PER_CALL_LIMIT)
    history.carry_over("SCL_1", 0, now)  # never lowers what is counted
    assert history.view(None, "SCL_1", now).call_count == 1


def test_legs_still_on_the_call_are_followed_again() -> None:
    present = {
        "sip_caller": True,
        "dialled-2": True,
        "dialled-1": True,
        "dialled-3": True,  # more than the record's dials: not one of ours
        "dialled-0": True,
        "dialled-01": True,
        "dialled-x": True,
        "human-agent-sip": True,
    }
    assert legs_still_here(present, dial_attempts=2) == ["dialled-1", "dialled-2"]
    # a participant that only calls itself a leg (not a SIP participant) is not one
    assert legs_still_here({"dialled-1": False}, dial_attempts=1) == []
    assert legs_still_here(present, dial_attempts=0) == []


# --- the same record, continued ------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield database
    finally:
        await database.close()


async def first_job(db: Database) -> None:
    """The call's first job: greeted, verified the PIN, placed a dial, then died (no
    finish): its entries reached the database within ``save_after_s``."""
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=0.01)
    sink = RecordSink(recorder, CALLER)
    sink.start(room="call-_+15105550123_x", route="support", providers={"stt": "fake"})
    for event in (
        ev.CallStatus(identity="sip_caller", status="active"),
        ev.PinAccepted(attempt=1),
        ev.Transcript(role="assistant", text="Hello, how can I help?"),
        ev.Transcript(role="user", text="Add sales."),
        ev.DialDecision(
            allowed=True,
            reason=None,
            policy="lab",
            call_id="SCL_1",
            caller=None,
            destination="sales",
            number=None,
            region=None,
        ),
    ):
        sink(event)
    deadline = time.monotonic() + 5
    while (record := await get_call(db, "SCL_1")) is None or len(record.statuses) < 3:
        assert time.monotonic() < deadline, "the entries were never written"
        await asyncio.sleep(0.01)


def continuation(db: Database, wait_s: float = 5.0) -> Continuation:
    read = asyncio.ensure_future(get_call(db, "SCL_1"))
    return Continuation(read, resume_status("agent_left"), wait_s)


async def test_the_resumed_job_continues_the_same_record(db: Database) -> None:
    await first_job(db)
    before = await get_call(db, "SCL_1")
    assert before is not None
    restored = restore_from(before)
    assert isinstance(restored, Restored)
    assert (restored.pin_verified, restored.dial_attempts) == (True, 1)

    sink = RecordSink(CallRecorder(db, heartbeat_s=None), CALLER, continuation(db))
    sink(ev.Transcript(role="assistant", text="Sorry, we were cut off."))  # before the read
    sink.start(room="call-_+15105550123_x", route="support", providers={"llm": "fake"})
    sink(ev.Transcript(role="user", text="Thanks."))
    sink(ev.CallerLeft(reason="CLIENT_INITIATED"))
    await sink.finish({"models": []})

    record = await get_call(db, "SCL_1")
    assert record is not None
    assert record.summary.status == "complete"
    assert record.summary.disconnect_reason == "CLIENT_INITIATED"
    assert record.summary.started_at == before.summary.started_at
    assert record.summary.caller_number == "+1510••••0123"  # kept as stored: masked
    assert [s.status for s in record.statuses] == [
        "active",
        PIN_VERIFIED,
        DIAL_ALLOWED,
        resume_status("agent_left"),
    ]
    assert [t.text for t in record.transcript] == [
        "Hello, how can I help?",
        "Add sales.",
        "Sorry, we were cut off.",
        "Thanks.",
    ]
    assert dict(record.providers) == {"stt": "fake", "llm": "fake"}
    assert [e.kind for e in timeline(record)][:2] == ["status", "status"]


async def test_an_unreadable_record_is_left_as_it_was(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    await first_job(db)
    before = await get_call(db, "SCL_1")
    broken: asyncio.Future[CallRecord | None] = asyncio.get_running_loop().create_future()
    broken.set_exception(OSError("database is down"))
    continues = Continuation(broken, resume_status("agent_left"), 1.0)
    sink = RecordSink(CallRecorder(db, heartbeat_s=None), CALLER, continues)
    sink.start(room="r", route="support", providers={})
    sink(ev.Transcript(role="assistant", text="Sorry, we were cut off."))
    sink(ev.CallerLeft(reason="CLIENT_INITIATED"))
    await sink.finish(None)
    assert await get_call(db, "SCL_1") == before  # not replaced by this job's half
    assert "not continued" in caplog.text


async def test_a_call_without_a_record_yet_starts_one_that_shows_the_resume(db: Database) -> None:
    sink = RecordSink(CallRecorder(db, heartbeat_s=None), CALLER, continuation(db))
    sink.start(room="r", route="support", providers={})
    sink(ev.CallerLeft(reason="CLIENT_INITIATED"))
    await sink.finish(None)
    record = await get_call(db, "SCL_1")
    assert record is not None
    assert [s.status for s in record.statuses] == [resume_status("agent_left")]


# --- the call flow's hooks -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
SERVER = {"LIVEKIT_URL": "wss://example.livekit.cloud", "LIVEKIT_API_KEY": "k"}
SERVER["LIVEKIT_API_SECRET"] = "s"
LAB_CALLER = Caller(
    kind="sip",
    identity="sip_caller",
    phone_number="+15105550123",
    called_number="+15105550111",  # the lab's AI number: route lab-tools
    call_id="SCL_1",
)


class RoomService:
    def __init__(self) -> None:
        self.updates: list[Any] = []

    async def update_room_metadata(self, update: Any) -> None:
        self.updates.append(update)


@dataclass
class Prepared:
    call: Call | None
    config: CallConfig
    job: Job
    events: list[ev.CallEvent]


async def prepare_resumed(
    tmp_path: Path, statuses: tuple[str, ...], tools: tuple[str, ...]
) -> Prepared:
    """``prepare_call`` for a resume of call SCL_1, whose record (written first) has
    ``statuses`` and a transfer_call with each result of ``tools``, in a room where the
    caller and the leg ``dialled-1`` still are."""
    url = f"sqlite:///{tmp_path / 'switchboard.db'}"
    db = await open_database(url)
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=None)
    await recorder.start(call_id="SCL_1", route="lab-tools", caller_number="+15105550123")
    for status in statuses:
        recorder.add_status(StatusChange(status, recorder.now()))
    for result in tools:
        recorder.add_tool_call(ToolCall("transfer_call", {}, result, recorder.now()))
    recorder.add_turn(Turn("assistant", "Hello.", recorder.now()))
    await recorder.flush()
    await db.close()

    settings = load_settings({**SERVER, "SWITCHBOARD_AI_MODE": "keyless", "DATABASE_URL": url})
    routes = load_routes(ROOT / "lab/routes.toml")
    pins, _ = read_pins(routes, {"LAB_TEST_PIN": "1234"})
    policy = load_policy(ROOT / "lab/policy.toml")
    config = CallConfig(settings, routes, policy, lambda *_: [], load_prompts(), pins)
    room = Room(Participant("sip_caller"), Participant("dialled-1"), Participant("dialled-9"))
    for participant in room.remote_participants.values():
        participant.kind = rtc.ParticipantKind.PARTICIPANT_KIND_SIP  # type: ignore[attr-defined]
    room.local_participant = SimpleNamespace(identity="agent-AJ_new")  # type: ignore[attr-defined]
    room.metadata = '{"kept": 1}'  # type: ignore[attr-defined]
    job = Job(room)
    job.api = SimpleNamespace(room=RoomService())  # type: ignore[attr-defined]
    seen: list[ev.CallEvent] = []
    events = EventLog(None, job_id="AJ_new")
    events.listeners.append(seen.append)
    request = parse_resume(meta())
    assert isinstance(request, ResumeRequest)
    call = await prepare_call(
        job.context, config, LAB_CALLER, events, request, db=create_database(url)
    )
    return Prepared(call, config, job, seen)


async def test_a_resumed_call_is_prepared_with_what_the_record_carries(tmp_path: Path) -> None:
    done = await prepare_resumed(tmp_path, ("active", DIAL_ALLOWED, PIN_VERIFIED), ())
    assert done.call is not None
    state = done.call.state
    try:
        assert (state.dial_attempts, state.pin_verified) == (1, True)
        assert state.dialled == ["dialled-1"]  # dialled-9: more than the record's dials
        assert done.config.dial_history.view(None, "SCL_1", time.time()).call_count == 1
        # the caller heard the lost agent ("Hello."): they hear the resumed line
        assert done.call.opening == load_prompts()["resumed"]
        (resumed,) = [e for e in done.events if isinstance(e, ev.CallResumed)]
        assert (resumed.record, resumed.turns, resumed.legs) == ("found", 1, 1)
        assert done.job.shutdowns == []
    finally:
        await done.call.db.close()


async def test_a_transferred_call_is_declined_and_its_room_left_alone(tmp_path: Path) -> None:
    done = await prepare_resumed(tmp_path, ("active",), ("warm_transferred",))
    assert done.call is None
    (declined,) = [e for e in done.events if isinstance(e, ev.ResumeDeclined)]
    assert "transferred" in declined.reason
    assert not any(isinstance(e, ev.CallResumed) for e in done.events)
    assert done.job.shutdowns and "transferred" in done.job.shutdowns[0]
    assert done.job.rooms_deleted == 0  # the caller may be on with the person now
    # and the guardian is told to send no agent after this one
    (update,) = done.job.api.room.updates  # type: ignore[attr-defined]
    assert json.loads(update.metadata) == {"kept": 1, AGENT_DONE_KEY: True}


def test_the_resumed_line_only_for_a_caller_who_heard_an_agent() -> None:
    assert apologises(Restored(transcript=TURNS), "found")
    assert apologises(Restored(), "unavailable")  # cannot know: the likelier case
    assert not apologises(Restored(), "none")  # no record: never answered
    assert not apologises(Restored(), "found")  # nothing was said


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("", {AGENT_DONE_KEY: True}),
        ('{"a": [1]}', {"a": [1], AGENT_DONE_KEY: True}),
        ("not json", {AGENT_DONE_KEY: True}),
        ("[1, 2]", {AGENT_DONE_KEY: True}),
        (json.dumps({AGENT_DONE_KEY: False}), {AGENT_DONE_KEY: True}),
    ],
)
def test_a_declining_agent_marks_the_room_done(before: str, after: dict[str, Any]) -> None:
    assert json.loads(agent_done_metadata(before)) == after


def test_what_the_guardian_writes_is_what_the_agent_reads() -> None:
    assert (GUARDIAN, AGENT_DONE_KEY) == (room.MARK_BY, room.AGENT_DONE_KEY)
    mark = room.Mark(resume=True, attempt=2, since=1795950483.0123)
    written = room.dispatch_metadata(
        mark, reason="agent_left", call_id="SCL_1", previous_job="AJ_old"
    )
    expected = ResumeRequest("agent_left", 2, 1795950483.012, "SCL_1", "AJ_old")
    assert parse_resume(written) == expected
    fresh = room.Mark(resume=False, attempt=1, since=1795950483.0)
    no_agent = room.dispatch_metadata(fresh, reason="no_agent", call_id="SCL_1", previous_job=None)
    assert parse_resume(no_agent) == NormalCall()
    # the guardian may not know the call ID: nothing to find the record by
    unknown = room.dispatch_metadata(mark, reason="agent_left", call_id=None, previous_job=None)
    assert isinstance(parse_resume(unknown), NormalCall)
    assert room.agent_done(agent_done_metadata('{"x": 1}'))
