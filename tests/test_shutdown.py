"""When a draining worker tells its calls goodbye, whom a call obeys, and what the call
does when told."""

from __future__ import annotations

import json
import time
from typing import Any, cast

import pytest
from livekit import rtc

from switchboard.call.event_types import (
    AgentHangup,
    AgentSaid,
    ShutdownGoodbye,
    ShutdownIgnored,
)
from switchboard.call.shutdown import (
    GOODBYE_LEAD_S,
    GOODBYE_TOPIC,
    GOODBYE_VALID_S,
    goodbye_delay,
    goodbye_message,
    is_genuine_goodbye,
    is_shutdown_request,
    listen_for_shutdown,
    new_goodbye_key,
)
from switchboard.config.errors import ConfigError
from switchboard.config.prompts import load_prompts
from switchboard.config.settings import load_settings
from tests.call_fakes import CALLER, Call, Participant, new_call

pytestmark = pytest.mark.unit


def test_goodbye_mode_says_goodbye_at_once() -> None:
    assert goodbye_delay("goodbye", 1800) == 0.0
    assert goodbye_delay("goodbye", 0) == 0.0


def test_finish_mode_says_goodbye_just_before_the_drain_deadline() -> None:
    assert goodbye_delay("finish", 1800) == 1800 - GOODBYE_LEAD_S
    # A deadline shorter than the goodbye itself: say it at once rather than be cut.
    assert goodbye_delay("finish", 5) == 0.0


def test_finish_mode_without_deadline_never_cuts_a_call() -> None:
    assert goodbye_delay("finish", 0) is None


def test_only_the_server_is_obeyed() -> None:
    assert is_shutdown_request(GOODBYE_TOPIC, None)
    assert not is_shutdown_request(GOODBYE_TOPIC, object())  # a participant in the room
    assert not is_shutdown_request("chat", None)
    assert not is_shutdown_request(None, None)


KEY = new_goodbye_key()
ROOM, JOB = "RM_call1", "AJ_call1"  # tests.call_fakes' job


def signed(key: bytes = KEY, room: str = ROOM, job: str = JOB, at: float | None = None) -> bytes:
    return goodbye_message(key, room, job, time.time() if at is None else at)


def genuine(data: bytes, key: bytes | None = KEY) -> bool:
    return is_genuine_goodbye(key, data, room_sid=ROOM, job_id=JOB, now=time.time())


def test_the_workers_signature_for_this_call_is_obeyed() -> None:
    assert genuine(signed())
    assert genuine(signed(at=time.time() - GOODBYE_VALID_S + 5))


@pytest.mark.parametrize(
    "data",
    [
        b"worker shutting down",  # what any participant would guess
        b"",
        b"[]",
        b'{"room": "RM_call1", "job": "AJ_call1", "at": 1, "sig": 5}',
        b"\xff" * 100,
        b"{" + b" " * 10_000 + b"}",
    ],
)
def test_an_unsigned_or_malformed_message_is_not_obeyed(data: bytes) -> None:
    assert not genuine(data)


def test_a_message_signed_otherwise_is_not_obeyed() -> None:
    assert not genuine(signed(key=new_goodbye_key()))  # another worker, or a guess
    assert not genuine(signed(room="RM_other"))  # another call's message
    assert not genuine(signed(job="AJ_other"))
    assert not genuine(signed(at=time.time() - GOODBYE_VALID_S - 1))  # too old to replay
    assert not genuine(signed(), key=None)  # a process the worker gave no key obeys nobody
    forged = json.loads(signed())
    forged["at"] += 1  # a fresh time on an old signature
    assert not genuine(json.dumps(forged).encode())


def test_shutdown_mode_is_checked() -> None:
    base = {"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
    assert load_settings(base).shutdown.mode == "finish"
    assert (
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "goodbye"}).shutdown.mode == "goodbye"
    )
    with pytest.raises(ConfigError, match="SWITCHBOARD_SHUTDOWN_MODE='later' must be finish"):
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "later"})


def listening(call: Call) -> Call:
    listen_for_shutdown(call.job.context, call.session, call.state, KEY)
    return call


def message(topic: str, sender: Participant | None, data: bytes | None = None) -> rtc.DataPacket:
    return rtc.DataPacket(
        data=signed() if data is None else data,
        kind=rtc.DataPacketKind.KIND_RELIABLE,
        participant=cast(Any, sender),
        topic=topic,
    )


async def test_the_servers_goodbye_message_ends_the_call_with_the_goodbye(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = listening(new_call(monkeypatch))
    call.room.emit("data_received", message(GOODBYE_TOPIC, None))
    assert await call.job.ended() == "shutdown"
    goodbye = load_prompts()["shutdown_goodbye"]
    assert call.asked.said == [(goodbye, {"allow_interruptions": False, "add_to_chat_ctx": False})]
    assert call.events == [
        ShutdownGoodbye(),
        AgentSaid(text=goodbye),
        AgentHangup(reason="shutdown"),
    ]
    assert call.job.rooms_deleted == 1 and call.job.shutdowns == ["shutdown"]


@pytest.mark.parametrize("sender", [CALLER, "dialled-0"])
async def test_a_goodbye_message_from_someone_in_the_room_is_ignored(
    monkeypatch: pytest.MonkeyPatch, sender: str
) -> None:
    call = listening(new_call(monkeypatch, Participant("dialled-0")))
    call.room.emit("data_received", message(GOODBYE_TOPIC, Participant(sender)))
    # The handler decides synchronously: had it obeyed, the call would be ending already.
    assert not call.state.ended
    assert call.events == [ShutdownIgnored(reason="participant")]
    assert call.asked.said == [] and call.job.shutdowns == []


async def test_an_unsigned_goodbye_from_no_visible_sender_is_ignored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a hidden participant's message looks like to the SDK: no sender."""
    call = listening(new_call(monkeypatch))
    call.room.emit("data_received", message(GOODBYE_TOPIC, None, b"worker shutting down"))
    call.room.emit("data_received", message(GOODBYE_TOPIC, None, signed(new_goodbye_key())))
    assert not call.state.ended
    assert call.events == [ShutdownIgnored(reason="unsigned")] * 2
    assert call.asked.said == [] and call.job.shutdowns == []


async def test_a_flood_of_forged_goodbyes_is_reported_a_few_times_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call = listening(new_call(monkeypatch))
    for _ in range(100):
        call.room.emit("data_received", message(GOODBYE_TOPIC, None, b"bye"))
    assert call.events == [ShutdownIgnored(reason="unsigned")] * 20
    assert not call.state.ended


async def test_other_messages_from_the_server_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    call = listening(new_call(monkeypatch))
    call.room.emit("data_received", message("chat", None))
    assert not call.state.ended and call.events == []


async def test_a_call_already_ending_says_no_goodbye(monkeypatch: pytest.MonkeyPatch) -> None:
    call = listening(new_call(monkeypatch))
    call.state.ended = True  # e.g. the caller asked to end it, or a provider failed
    call.room.emit("data_received", message(GOODBYE_TOPIC, None))
    assert call.events == [] and call.asked.said == []
