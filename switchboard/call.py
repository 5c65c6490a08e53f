"""One call, from dispatch to hang-up: the flow ``agent.py`` runs for every job.

It waits for the caller (never forever), reads who is calling, routes the call, builds
the session the route asks for, greets, and makes sure nothing is left behind: when the
caller leaves for any reason, the session closes, the room is deleted and the job ends.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any

from livekit import rtc
from livekit.agents import NOT_GIVEN, Agent, AgentSession, JobContext, room_io, vad

from .caller import Caller
from .callrecord import RecordSink
from .callstate import CallState
from .db import Database, create_database
from .dial_log import SharedDialHistory
from .directory import lookup
from .directory_model import DirectoryEntry
from .events import EventLog
from .faults import SESSION_OPTIONS, watch_provider_faults
from .lifecycle import Action, on_participant_left
from .participants import console_caller, wait_for_caller
from .policy import DialHistory
from .policy_config import PolicyConfig
from .prompts import load_prompt, render_instructions
from .providers import build_providers
from .records import CallRecorder
from .routing import Route, RouteTable, region_of, route_for
from .settings import Settings
from .toolkit import tools_for

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
    ctx.add_shutdown_callback(lambda reason: _job_ended(events, reason))
    events.emit("job_started", agent_name=settings.agent_name, ai_mode=settings.ai_mode)

    if ctx.is_fake_job():
        caller: Caller | None = console_caller(settings)
    else:
        caller = await wait_for_caller(ctx, settings.participant_timeout)
    if caller is None:
        logger.warning("no caller joined within %ss; ending the job", settings.participant_timeout)
        events.emit("no_caller", timeout_s=settings.participant_timeout)
        ctx.delete_room()
        ctx.shutdown("no caller joined")
        return
    events.emit("caller", caller=caller.log_fields())

    db = create_database(settings.database_url)  # no I/O until first use
    entry = await _known_caller(db, caller, settings, events)
    decision = route_for(caller, config.routes, directory_fields(entry))
    route = decision.route
    events.emit("route", route=route.name, reason=decision.reason)
    sink = RecordSink(CallRecorder(db), caller)
    events.listeners.append(sink)

    providers = build_providers(settings, caller, route)
    events.emit("providers", **providers.describe())
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
    _follow_the_call(ctx, session, state)
    watch_provider_faults(ctx, session, state)
    session.on("close", lambda ev: events.emit("session_closed", reason=str(ev.reason)))
    session.on("conversation_item_added", lambda ev: _transcript(events, ev.item))

    history = SharedDialHistory(db, config.dial_history)

    async def close_record(_reason: str) -> None:
        await sink.finish(_usage(session))
        await db.close()

    ctx.add_shutdown_callback(close_record)
    agent = Agent(
        instructions=instructions_for(caller, route, entry),
        tools=[] if settings.keyless else tools_for(route, config.policy, history),
    )
    await session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=caller.identity, delete_room_on_close=True
        ),
        record=False,
    )
    sink.start(room=ctx.room.name, route=route.name, providers=providers.describe())
    if settings.keyless:
        await _keyless_call(ctx, session, events)
    elif route.greeting:
        session.say(route.greeting)
    else:
        session.generate_reply(instructions="Greet the caller briefly and offer your help.")


async def _known_caller(
    db: Database, caller: Caller, settings: Settings, events: EventLog
) -> DirectoryEntry | None:
    """The directory's entry for this caller, within the lookup budget, or None."""
    if not caller.is_phone_call:
        return None
    found = await lookup(
        db,
        caller.phone_number,
        timeout_s=settings.directory_timeout,
        default_region=settings.default_region,
    )
    events.emit("directory", status=found.status, failure=found.failure,
                elapsed_ms=round(found.elapsed_s * 1000, 1))  # fmt: skip
    return found.entry


def directory_fields(entry: DirectoryEntry | None) -> dict[str, str] | None:
    """A directory entry as the flat text fields routes can match on."""
    if entry is None:
        return None
    fields = {k: str(v) for k, v in entry.extra.items() if v is not None}
    for name in ("name", "account_id", "tier", "language"):
        if (value := getattr(entry, name)) is not None:
            fields[name] = str(value)
    return fields


def instructions_for(caller: Caller, route: Route, entry: DirectoryEntry | None = None) -> str:
    """The route's prompt with the caller's context as quoted data."""
    details: dict[str, object] = {
        "called_number": caller.called_number,
        "caller_region": region_of(caller.phone_number),
        "caller_number_hidden": caller.number_hidden,
        "language": route.language,
        "custom": dict(caller.custom),
    }
    if entry is not None:
        details["known_caller"] = {
            "name": entry.name, "account_tier": entry.tier, "preferred_language": entry.language
        }  # fmt: skip
    return render_instructions(load_prompt(route.prompt), details)


def _follow_the_call(ctx: JobContext, session: AgentSession[CallState], state: CallState) -> None:
    """Act on every participant leaving, as `lifecycle.on_participant_left` decides, and
    log every SIP call status change. The framework closes the session by itself only for
    some disconnect reasons, so we never rely on it."""
    events = state.events

    def on_disconnected(participant: rtc.RemoteParticipant) -> None:
        reason = (
            rtc.DisconnectReason.Name(participant.disconnect_reason)
            if participant.disconnect_reason
            else None
        )
        decision = on_participant_left(
            participant.identity,
            reason,
            caller_identity=state.caller.identity,
            dialled=frozenset(state.dialled),
        )
        events.emit("participant_left", identity=participant.identity, reason=reason,
                    action=decision.action.value)  # fmt: skip
        if decision.action is Action.END_CALL:
            events.emit("caller_left", reason=reason or "UNKNOWN")
            session.shutdown(drain=False)
            ctx.delete_room()
            ctx.shutdown(f"caller left ({reason})")
        elif decision.action is Action.END_JOB:
            session.shutdown(drain=False)
            ctx.shutdown("room deleted")
        elif decision.action is Action.REPORT_LEG:
            state.dialled.remove(participant.identity)
            if decision.say and session.llm is not None:
                session.generate_reply(instructions=decision.say)

    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        if "sip.callStatus" in changed:
            events.emit(
                "call_status", identity=participant.identity, status=changed["sip.callStatus"]
            )

    def on_room_gone(reason: rtc.DisconnectReason.ValueType) -> None:
        events.emit("room_disconnected", reason=rtc.DisconnectReason.Name(reason))
        ctx.shutdown("room disconnected")

    ctx.room.on("participant_disconnected", on_disconnected)
    ctx.room.on("participant_attributes_changed", on_attributes)
    ctx.room.on("disconnected", on_room_gone)


async def _keyless_call(
    ctx: JobContext, session: AgentSession[CallState], events: EventLog
) -> None:
    """No AI configured: say so honestly, then hang up once the words have been heard."""
    text = load_prompt("keyless")
    handle = session.say(text, allow_interruptions=False)
    events.emit("agent_said", text=text)
    await handle.wait_for_playout()
    if not ctx.room.isconnected() or not ctx.room.remote_participants:
        return  # the caller hung up first; _follow_the_call has cleaned up
    events.emit("agent_hangup", reason="keyless")
    await ctx.delete_room()
    ctx.shutdown("keyless call complete")


def _usage(session: AgentSession[CallState]) -> dict[str, Any]:
    try:
        return {"models": [dataclasses.asdict(u) if dataclasses.is_dataclass(u) else str(u)
                           for u in session.usage.model_usage]}  # fmt: skip
    except Exception:
        logger.exception("could not read the session's usage figures")
        return {}


def _transcript(events: EventLog, item: object) -> None:
    # Messages carry a role and text; function calls and handoffs are recorded elsewhere.
    role = getattr(item, "role", None)
    text = getattr(item, "text_content", None)
    if role and text:
        events.emit("transcript", role=role, text=text)


async def _job_ended(events: EventLog, reason: str) -> None:
    events.emit("job_ended", reason=reason)
