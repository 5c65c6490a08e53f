"""When a draining worker tells its calls goodbye, whom a call obeys, and what the call
does when told."""

from __future__ import annotations

from typing import Any, cast

import pytest
from livekit import rtc

from switchboard.call.event_types import AgentHangup, AgentSaid, ShutdownGoodbye
from switchboard.call.shutdown import (
    GOODBYE_LEAD_S,
    GOODBYE_TOPIC,
    goodbye_delay,
    is_shutdown_request,
    listen_for_shutdown,
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


def test_shutdown_mode_is_checked() -> None:
    base = {"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
    assert load_settings(base).shutdown.mode == "finish"
    assert (
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "goodbye"}).shutdown.mode == "goodbye"
    )
    with pytest.raises(ConfigError, match="SWITCHBOARD_SHUTDOWN_MODE='later' must be finish"):
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "later"})


def listening(call: Call) -> Call:
    listen_for_shutdown(call.job.context, call.session, call.state)
    return call


def message(topic: str, sender: Participant | None) -> rtc.DataPacket:
    return rtc.DataPacket(
        data=b"worker shutting down",
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
    assert call.events == [] and call.asked.said == [] and call.job.shutdowns == []


async def test_other_messages_from_the_server_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    call = listening(new_call(monkeypatch))
    call.room.emit("data_received", message("chat", None))
    assert not call.state.ended and call.events == []


async def test_a_call_already_ending_says_no_goodbye(monkeypatch: pytest.MonkeyPatch) -> None:
    call = listening(new_call(monkeypatch))
    call.state.ended = True  # e.g. the caller asked to end it, or a provider failed
    call.room.emit("data_received", message(GOODBYE_TOPIC, None))
    assert call.events == [] and call.asked.said == []
