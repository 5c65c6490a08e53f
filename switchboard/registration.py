"""Whether the worker should give up on the LiveKit server, and the one line that says why.

The framework retries a worker's connection for minutes, logs a traceback when it gives up,
and then exits with status 0; a refused key is reported as "Invalid response status". The
worker (``switchboard.worker``) instead asks ``give_up`` every moment it is not
registered, and exits non-zero with ``Failure.reason``: what is wrong and what to check.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

# The server's answers to a token it cannot verify (unknown key, wrong secret).
_REFUSED = (401, 403)


@dataclass(frozen=True, slots=True)
class Failure:
    reason: str
    fatal: bool  # trying again cannot help: give up at once


def explain(error: BaseException | None, url: str) -> Failure:
    """What the last connection attempt's ``error`` means, for a person (None: no attempt
    has failed yet, the server just has not answered)."""
    if isinstance(error, aiohttp.WSServerHandshakeError) and error.status in _REFUSED:
        return Failure(
            f"the LiveKit server at {url} refused the worker's credentials ({error.status}): "
            "check LIVEKIT_API_KEY / LIVEKIT_API_SECRET",
            fatal=True,
        )
    if isinstance(error, aiohttp.WSServerHandshakeError):
        return Failure(
            f"the LiveKit server at {url} answered {error.status} {error.message}: check "
            "that LIVEKIT_URL is your LiveKit server's URL",
            fatal=False,
        )
    if isinstance(error, aiohttp.ClientConnectorError):
        why = error.os_error.strerror or type(error.os_error).__name__
        return Failure(
            f"cannot reach the LiveKit server at {url} ({why}): check LIVEKIT_URL and that "
            "the server is running",
            fatal=False,
        )
    if error is None:
        return Failure(
            f"no answer from the LiveKit server at {url}: check LIVEKIT_URL and that the "
            "server is running",
            fatal=False,
        )
    return Failure(
        f"cannot register with the LiveKit server at {url} ({type(error).__name__}: {error}): "
        "check LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET",
        fatal=False,
    )


def give_up(
    *,
    error: BaseException | None,
    url: str,
    unregistered_for: float,
    window: float,
    active_calls: int,
) -> Failure | None:
    """The failure to exit with, or None to keep trying. Calls in progress keep the worker
    up (their media does not go through this connection); a refused credential or
    ``window`` seconds unregistered otherwise end it."""
    if active_calls:
        return None
    failure = explain(error, url)
    if failure.fatal:
        return failure
    if unregistered_for < window:
        return None
    return Failure(f"{failure.reason} (not registered for {window:g} s)", fatal=False)
