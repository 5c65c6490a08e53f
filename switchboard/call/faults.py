"""When an AI provider fails mid-call: never leave the caller in silence.

Retries are kept short (a caller hears every second of them as dead air). With a second
model configured, the framework's fallback adapter switches to it; with none left, the
agent says honestly, in its offline voice if need be, that the assistant is unavailable,
and ends the call cleanly; or, on a route with a keypad menu, the caller hears the menu
and can still reach a person (``fallback``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from livekit.agents import AgentSession, APIConnectOptions, JobContext
from livekit.agents.voice.agent_session import SessionConnectOptions
from livekit.agents.voice.events import ErrorEvent

from switchboard.call.event_types import ProviderFailed
from switchboard.call.hangup import say_then_hang_up_soon
from switchboard.call.state import CallState

logger = logging.getLogger("switchboard.call")

# One quick retry, then give up: worst case about 2 x 2.5 s before the apology starts.
LLM_OPTIONS = APIConnectOptions(max_retry=1, retry_interval=0.2, timeout=2.5)
SESSION_OPTIONS = SessionConnectOptions(
    llm_conn_options=LLM_OPTIONS,
    stt_conn_options=APIConnectOptions(max_retry=2, retry_interval=0.5, timeout=5.0),
)


# Kept referenced until done (asyncio keeps only weak references to tasks).
_menus: set[asyncio.Future[None]] = set()


def fatal(event: ErrorEvent) -> bool:
    """An error the call cannot recover from: the LLM or STT gave up after its retries."""
    error = event.error
    return not getattr(error, "recoverable", True) and getattr(error, "type", "") in (
        "llm_error",
        "stt_error",
    )


def watch_provider_faults(
    ctx: JobContext,
    session: AgentSession[CallState],
    state: CallState,
    fallback: Callable[[], Awaitable[None]] | None = None,
) -> None:
    def on_error(event: ErrorEvent) -> None:
        if state.ended or not fatal(event):
            return
        state.ended = True
        kind = getattr(event.error, "type", "error")
        state.events.emit(ProviderFailed(source=kind))
        if fallback is not None:
            logger.error("the %s provider failed; the caller gets the keypad menu", kind)
            session.interrupt(force=True)
            task = asyncio.ensure_future(fallback())
            _menus.add(task)
            task.add_done_callback(_menus.discard)
            return
        logger.error("the %s provider failed; apologising and ending the call", kind)
        say_then_hang_up_soon(
            ctx, session, state, state.prompts["provider_down"], "provider_failed"
        )

    session.on("error", on_error)
