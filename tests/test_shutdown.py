"""When a draining worker tells its calls goodbye, and whom a call obeys."""

from __future__ import annotations

import pytest

from switchboard.call.shutdown import (
    GOODBYE_LEAD_S,
    GOODBYE_TOPIC,
    goodbye_delay,
    is_shutdown_request,
)
from switchboard.config.settings import ConfigError, load_settings

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
    assert load_settings(base).shutdown_mode == "finish"
    assert (
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "goodbye"}).shutdown_mode == "goodbye"
    )
    with pytest.raises(ConfigError, match="SWITCHBOARD_SHUTDOWN_MODE='later' must be finish"):
        load_settings({**base, "SWITCHBOARD_SHUTDOWN_MODE": "later"})
