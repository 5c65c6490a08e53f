"""One call, from dispatch to hang-up: the flow ``agent.py`` runs for every job.

It waits for the caller (never forever), reads who is calling, routes the call, builds
the session the route asks for, greets, and makes sure nothing is left behind: when the
caller leaves for any reason, the session closes, the room is deleted and the job ends.
"""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field

from livekit.agents import NOT_GIVEN, Agent, AgentSession, JobContext, room_io, vad

from switchboard.call.context import directory_fields, instructions_for, known_caller
from switchboard.call.event_types import (
    AgentSaid,
    CallerIdentified,
    JobStarted,
    NoCaller,
    ProvidersChosen,
    RouteChosen,
    SessionClosed,
    SessionStarted,
)
from switchboard.call.events import EventLog
from switchboard.call.faults import SESSION_OPTIONS, watch_provider_faults
from switchboard.call.handlers import follow_the_call, job_ended, record_transcript, usage_of
from switchboard.call.hangup import hang_up
from switchboard.call.keypad import DtmfCollector, forward_keypresses, pin_for, pin_gate
from switchboard.call.participants import NoCallerError, console_caller, wait_for_caller
from switchboard.call.providers import build_providers
from switchboard.call.record import RecordSink
from switchboard.call.shutdown import listen_for_shutdown
from switchboard.call.state import CallState
from switchboard.config.policy import PolicyConfig
from switchboard.config.prompts import load_prompt
from switchboard.config.settings import Settings
from switchboard.data.db import create_database
from switchboard.data.dial_history import SharedDialHistory
from switchboard.data.records.recorder import CallRecorder
from switchboard.dialing.policy import DialHistory
from switchboard.routing import RouteTable, route_for
from tools import tools_for

logger = logging.getLogger("switchboard.call")


@dataclass(frozen=True)
class CallConfig:
    """Everything validated at start that every call reads."""

    settings: Settings
    routes: RouteTable
    policy: PolicyConfig
    # Per job process; a process serves one call at a time, so this bounds one call.
    dial_history: DialHistory = field(default_factory=DialHistory, compare=False)


async def handle_call(ctx: JobContext, config: CallConfig, vad_model: vad.VAD) -> None:
    settings = config.settings
    # The room's SID, not its name: dispatch rules put the caller's number in room names.
    events = EventLog(settings.events_file, job_id=ctx.job.id, room_id=ctx.job.room.sid)
    ctx.log_context_fields = {"job_id": ctx.job.id}
    ctx.add_shutdown_callback(lambda reason: job_ended(events, reason))
    events.emit(JobStarted(agent_name=settings.agent_name, ai_mode=settings.ai_mode))

    try:
        caller = (
            console_caller(settings)
            if ctx.is_fake_job()
            else await wait_for_caller(ctx, settings.participant_timeout)
        )
    except NoCallerError as e:
        logger.warning("%s; ending the job", e)
        events.emit(NoCaller(reason=str(e)))
        ctx.delete_room()
        ctx.shutdown(str(e))
        return
    events.emit(CallerIdentified(caller=caller.log_fields()))

    db = create_database(settings.database_url)  # no I/O until first use
    entry = await known_caller(db, caller, settings, events)
    decision = route_for(caller, config.routes, directory_fields(entry))
    route = decision.route
    events.emit(RouteChosen(route=route.name, reason=decision.reason, stt_model=decision.stt_model))
    logger.info("route %s chosen: %s", route.name, decision.reason)
    sink = RecordSink(CallRecorder(db), caller)
    events.listeners.append(sink)

    providers = build_providers(settings, caller, route)
    events.emit(ProvidersChosen(**providers.describe()))
    state = CallState(
        caller=caller,
        route=route,
        room_name=ctx.room.name,
        agent_identity=ctx.room.local_participant.identity if not ctx.is_fake_job() else "",
        events=events,
        lk=ctx.api,
        outbound_trunk_id=settings.outbound_trunk_id,
        ring_timeout=settings.ring_timeout,
    )
    session: AgentSession[CallState] = AgentSession(
        stt=providers.stt or NOT_GIVEN,
        llm=providers.llm or NOT_GIVEN,
        tts=providers.tts,
        vad=vad_model,
        userdata=state,
        conn_options=SESSION_OPTIONS,
    )
    follow_the_call(ctx, session, state)
    watch_provider_faults(ctx, session, state)
    session.on("close", lambda ev: events.emit(SessionClosed(reason=str(ev.reason))))
    session.on("conversation_item_added", lambda ev: record_transcript(events, ev.item))

    history = SharedDialHistory(db, config.dial_history)

    async def close_record(_reason: str) -> None:
        await sink.finish(usage_of(session))
        await db.close()

    ctx.add_shutdown_callback(close_record)
    agent = Agent(
        instructions=instructions_for(caller, route, entry),
        tools=[] if settings.keyless else tools_for(route, config.policy, history),
    )
    keys = DtmfCollector(ctx.room)  # from here on, every participant's key presses are kept
    if route.pin_env:
        # Nothing the caller says reaches the model before the PIN is right (pin_gate turns
        # it back on); off before start, so there is no gap while the session starts.
        session.input.set_audio_enabled(False)
    await session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=caller.identity, delete_room_on_close=True
        ),
        record=False,
    )
    events.emit(SessionStarted())
    if not ctx.is_fake_job():  # console has no worker to shut down under it
        listen_for_shutdown(ctx, session, state)
    sink.start(room=ctx.room.name, route=route.name, providers=providers.describe())
    if route.pin_env and not await _pin_ok(ctx, session, keys, state):
        return
    if not settings.keyless:  # key presses become the caller's words (no model: nobody to tell)
        keypad = asyncio.create_task(
            forward_keypresses(
                session, keys, caller.identity, events=events, on_hold=lambda: state.on_hold
            )
        )

        async def stop_keypad(_reason: str) -> None:
            keypad.cancel()

        ctx.add_shutdown_callback(stop_keypad)
    if settings.keyless:
        await _keyless_call(ctx, session, state)
    elif route.greeting:
        session.say(route.greeting)
    else:
        session.generate_reply(instructions="Greet the caller briefly and offer your help.")


async def _pin_ok(
    ctx: JobContext, session: AgentSession[CallState], keys: DtmfCollector, state: CallState
) -> bool:
    """The route's PIN gate; a caller who fails it is told goodbye and the call ends."""
    route, events = state.route, state.events
    verified = await pin_gate(
        session,
        keys,
        state.caller.identity,
        expected=pin_for(route, os.environ),
        attempts=route.pin_attempts,
        prompt=route.pin_prompt,
        events=events,
    )
    if verified:
        state.pin_verified = True
        return True
    await hang_up(ctx, state, "pin", "PIN not verified")
    return False


async def _keyless_call(
    ctx: JobContext, session: AgentSession[CallState], state: CallState
) -> None:
    """No AI configured: say so honestly, then hang up once the words have been heard."""
    text, events = load_prompt("keyless"), state.events
    handle = session.say(text, allow_interruptions=False)
    events.emit(AgentSaid(text=text))
    await handle.wait_for_playout()
    if state.ended:
        return  # cut short by a shutdown goodbye, which hangs up itself
    await hang_up(ctx, state, "keyless", "keyless call complete")
