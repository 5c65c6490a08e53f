"""What the worker says when it cannot register with the LiveKit server: the decision and
its words (``switchboard.registration``)."""

from __future__ import annotations

from typing import Any, cast

import aiohttp
import pytest

from switchboard.registration import explain, give_up

pytestmark = pytest.mark.unit

URL = "wss://example.livekit.cloud"


def refused(status: int) -> aiohttp.WSServerHandshakeError:
    return aiohttp.WSServerHandshakeError(
        cast(Any, None), (), status=status, message="Invalid response status"
    )


def unreachable() -> aiohttp.ClientConnectorError:
    return aiohttp.ClientConnectorError(None, ConnectionRefusedError(111, "Connection refused"))  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_name_the_variables_and_end_it_at_once(status: int) -> None:
    failure = give_up(error=refused(status), url=URL, unregistered_for=0, window=60, active_calls=0)
    assert failure is not None and failure.fatal
    assert "check LIVEKIT_API_KEY / LIVEKIT_API_SECRET" in failure.reason
    assert str(status) in failure.reason


def test_an_unreachable_server_is_retried_within_the_window() -> None:
    args = {"error": unreachable(), "url": URL, "window": 60, "active_calls": 0}
    assert give_up(unregistered_for=59, **args) is None  # type: ignore[arg-type]
    failure = give_up(unregistered_for=60, **args)  # type: ignore[arg-type]
    assert failure is not None and not failure.fatal
    assert failure.reason.startswith(
        f"cannot reach the LiveKit server at {URL} (Connection refused)"
    )
    assert "check LIVEKIT_URL" in failure.reason
    assert "\n" not in failure.reason


def test_calls_in_progress_keep_the_worker_up() -> None:
    assert (
        give_up(error=refused(401), url=URL, unregistered_for=600, window=60, active_calls=1)
        is None
    )


def test_a_server_that_never_answered_is_said_so() -> None:
    failure = give_up(error=None, url=URL, unregistered_for=61, window=60, active_calls=0)
    assert failure is not None
    assert failure.reason.startswith(f"no answer from the LiveKit server at {URL}")


def test_another_answer_says_what_the_server_said() -> None:
    failure = explain(refused(404), URL)
    assert not failure.fatal
    assert "answered 404" in failure.reason and "LIVEKIT_URL" in failure.reason
