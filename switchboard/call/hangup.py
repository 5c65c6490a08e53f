"""Ending a call on the agent's initiative: the words first, all of them, then the hang-up.

Used wherever the agent, not the caller, ends the call outside a tool (an AI provider
that failed, a worker shutting down). The room is deleted once the speech has played
out, which disconnects every leg; the job then ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from livekit.agents import AgentSession, JobContext

from switchboard.call.event_types import AgentHangup, AgentSaid
from switchboard.call.state import CallState

# Tasks started from event callbacks: kept referenced until done (asyncio keeps only weak
# references to tasks, so an unreferenced one can vanish mid-call).
_tasks: set[asyncio.Task[Any]] = set()
# Longest wait for the speech being cut to stop before the message is said anyway.
INTERRUPT_WAIT_S = 2.0


def say_then_hang_up_soon(
    ctx: JobContext, session: AgentSession[CallState], state: CallState, text: str, reason: str
) -> None:
    """``say_then_hang_up`` in the background, from a callback that cannot await."""
    task = asyncio.create_task(say_then_hang_up(ctx, session, state, text, reason))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def say_then_hang_up(
    ctx: JobContext, session: AgentSession[CallState], state: CallState, text: str, reason: str
) -> None:
    # Whatever the agent was saying is cut short: this message replaces it. Said once the
    # cut is done (bounded): the cut speech's audio is cleared as it stops, and this
    # message must not be queued before that. (A lab run once hung up 0.1 s after a
    # shutdown goodbye asked for while the first words were starting, unheard; this is
    # the likely race, not a proven one.)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.interrupt(force=True), INTERRUPT_WAIT_S)
    handle = session.say(text, allow_interruptions=False, add_to_chat_ctx=False)
    state.events.emit(AgentSaid(text=text))
    await handle.wait_for_playout()
    await hang_up(ctx, state, reason, reason)


async def hang_up(ctx: JobContext, state: CallState, reason: str, why: str) -> None:
    """The agent ends the call: the room deleted (every leg with it), then the job, ``why``
    in its log. Not when the caller has gone already: then follow_the_call has ended the
    call, with the caller's own reason."""
    if ctx.room.isconnected() and state.caller.identity in ctx.room.remote_participants:
        state.events.emit(AgentHangup(reason=reason))
        await ctx.delete_room()
    elif ctx.is_fake_job():  # console: the simulated caller is in no room, but hung up on
        state.events.emit(AgentHangup(reason=reason))
    ctx.shutdown(why)
