"""Following a call: who leaves, and what the call does about it, driven through a room
that emits the SDK's own events to ``follow_the_call``."""

from __future__ import annotations

import asyncio

import pytest
from livekit import rtc
from livekit.plugins import openai

import switchboard.call.handlers
from switchboard.call.event_types import (
    CallerLeft,
    CallStatus,
    ParticipantLeft,
    RoomDisconnected,
)
from switchboard.call.handlers import follow_the_call
from tests.call_fakes import CALLER, DEADLINE_S, Call, Participant, new_call

pytestmark = pytest.mark.unit

LEG = "dialled-0"
GRACE_S = 0.01  # HANGUP_GRACE_S in these tests: the wait is the handlers', not ours


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(switchboard.call.handlers, "HANGUP_GRACE_S", GRACE_S)


def followed(call: Call) -> Call:
    follow_the_call(call.job.context, call.session, call.state)
    return call


def reason(name: str) -> int:
    return rtc.DisconnectReason.Value(name)


def caller_leaves(call: Call, why: str | None) -> None:
    code = reason(why) if why else None
    call.room.emit("participant_disconnected", Participant(CALLER, disconnect_reason=code))


def status_changes(call: Call, identity: str, status: str) -> None:
    participant = Participant(identity, attributes={"sip.callStatus": status})
    call.room.emit("participant_attributes_changed", {"sip.callStatus": status}, participant)


async def grace_has_passed() -> None:
    """Returns once a grace timer started before this call has run: timers run in the
    order of their deadlines, and this one's is later."""
    passed = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(GRACE_S * 2, passed.set_result, None)
    await asyncio.wait_for(passed, DEADLINE_S)


def assert_call_ended_once(call: Call, why: str | None) -> None:
    assert call.asked.shutdowns == [{"drain": False}]
    assert call.job.rooms_deleted == 1
    assert call.job.shutdowns == [f"caller left ({why})"]
    left = [e for e in call.events if isinstance(e, CallerLeft)]
    assert left == [CallerLeft(reason=why or "UNKNOWN")]


# Every reason the server gives, or none; ROOM_DELETED is the room going, not the caller.
CALLER_REASONS = [
    name
    for name, _ in rtc.DisconnectReason.items()
    if name not in ("UNKNOWN_REASON", "ROOM_DELETED")
]


@pytest.mark.parametrize("why", [*CALLER_REASONS, None])
async def test_the_caller_leaving_ends_the_call_once(
    monkeypatch: pytest.MonkeyPatch, why: str | None
) -> None:
    call = followed(new_call(monkeypatch))
    caller_leaves(call, why)
    assert call.events[0] == ParticipantLeft(identity=CALLER, reason=why, action="end_call")
    assert_call_ended_once(call, why)


async def test_a_hangup_status_then_the_leaving_end_the_call_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = followed(new_call(monkeypatch))
    status_changes(call, CALLER, "hangup")
    caller_leaves(call, "CLIENT_INITIATED")
    await grace_has_passed()
    assert_call_ended_once(call, "CLIENT_INITIATED")  # the leaving's reason, not the status


async def test_a_hangup_status_alone_ends_the_call_after_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = followed(new_call(monkeypatch))
    status_changes(call, CALLER, "hangup")
    assert call.job.shutdowns == []  # the leaving, with its reason, may still come
    assert await call.job.ended() == "caller left (CALLER_HANGUP)"
    caller_leaves(call, "CLIENT_INITIATED")  # late, as when the caller's link broke
    assert_call_ended_once(call, "CALLER_HANGUP")


async def test_a_caller_gone_with_the_room_is_not_ended_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = followed(new_call(monkeypatch))
    call.room.connected = False
    caller_leaves(call, "CLIENT_INITIATED")
    assert call.job.rooms_deleted == 0 and call.job.shutdowns == []


async def test_a_dialled_leg_leaving_is_reported_and_the_call_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = openai.LLM(model="unused", api_key="unused", base_url="http://127.0.0.1:9")
    call = followed(new_call(monkeypatch, Participant(LEG), model=model))
    call.state.dialled.append(LEG)
    call.room.emit("participant_disconnected", Participant(LEG, reason("USER_REJECTED")))
    assert call.state.dialled == []
    assert call.asked.replies == [
        {
            "instructions": "The person you tried to add declined or was busy. "
            "Tell the caller, and offer other help."
        }
    ]
    assert call.events == [
        ParticipantLeft(identity=LEG, reason="USER_REJECTED", action="report_leg")
    ]
    assert call.asked.shutdowns == [] and call.job.shutdowns == [] and call.job.rooms_deleted == 0


async def test_a_dialled_leg_leaving_without_a_model_is_only_recorded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = followed(new_call(monkeypatch, Participant(LEG)))
    call.state.dialled.append(LEG)
    call.room.emit("participant_disconnected", Participant(LEG, reason("CLIENT_INITIATED")))
    assert call.state.dialled == []
    assert call.asked.replies == [] and call.asked.said == []
    assert call.events == [
        ParticipantLeft(identity=LEG, reason="CLIENT_INITIATED", action="report_leg")
    ]
    assert call.job.shutdowns == []


async def test_someone_else_leaving_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    call = followed(new_call(monkeypatch, Participant("observer")))
    call.state.dialled.append(LEG)
    call.room.emit("participant_disconnected", Participant("observer", reason("CLIENT_INITIATED")))
    assert call.events == [
        ParticipantLeft(identity="observer", reason="CLIENT_INITIATED", action="ignore")
    ]
    assert call.state.dialled == [LEG]
    assert call.asked.replies == [] and call.asked.shutdowns == [] and call.job.shutdowns == []


@pytest.mark.parametrize("who", [CALLER, LEG])
async def test_the_room_deleted_ends_the_job(monkeypatch: pytest.MonkeyPatch, who: str) -> None:
    call = followed(new_call(monkeypatch, Participant(LEG)))
    call.state.dialled.append(LEG)
    call.room.emit("participant_disconnected", Participant(who, reason("ROOM_DELETED")))
    assert call.events == [ParticipantLeft(identity=who, reason="ROOM_DELETED", action="end_job")]
    assert call.asked.shutdowns == [{"drain": False}]
    assert call.job.shutdowns == ["room deleted"]
    assert call.job.rooms_deleted == 0  # already gone


async def test_the_room_disconnecting_closes_the_session_and_ends_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = followed(new_call(monkeypatch))
    call.room.emit("disconnected", reason("SERVER_SHUTDOWN"))
    assert call.events == [RoomDisconnected(reason="SERVER_SHUTDOWN")]
    assert call.asked.shutdowns == [{"drain": False}]
    assert call.job.shutdowns == ["room disconnected"]


async def test_call_statuses_are_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    call = followed(new_call(monkeypatch, Participant(LEG)))
    status_changes(call, LEG, "ringing")
    status_changes(call, CALLER, "active")
    status_changes(call, LEG, "active")
    assert call.state.call_statuses == {LEG: "active", CALLER: "active"}
    assert call.events == [
        CallStatus(identity=LEG, status="ringing"),
        CallStatus(identity=CALLER, status="active"),
        CallStatus(identity=LEG, status="active"),
    ]
    assert call.job.shutdowns == []


async def test_other_attribute_changes_are_not_statuses(monkeypatch: pytest.MonkeyPatch) -> None:
    call = followed(new_call(monkeypatch))
    changed = {"lang": "es"}
    call.room.emit(
        "participant_attributes_changed", changed, Participant(CALLER, attributes=changed)
    )
    assert call.state.call_statuses == {} and call.events == []


async def test_a_legs_hangup_status_does_not_end_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    call = followed(new_call(monkeypatch, Participant(LEG)))
    status_changes(call, LEG, "hangup")
    await grace_has_passed()
    assert call.events == [CallStatus(identity=LEG, status="hangup")]
    assert call.job.shutdowns == []
