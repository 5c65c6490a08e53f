"""One call, from dispatch to hang-up: the flow ``agent.py`` runs for every job.

It waits for the caller (never forever), reads who is calling, builds the session the
settings and the caller call for, greets, and makes sure nothing is left behind: when
the caller leaves for any reason, the session closes, the room is deleted and the job
ends.
"""

from __future__ import annotations

import asyncio
import logging

from livekit import rtc
from livekit.agents import NOT_GIVEN, Agent, AgentSession, JobContext, room_io, vad

from .caller import Caller, CallerKind, caller_from_participant
from .events import EventLog
from .prompts import load_prompt
from .providers import build_providers
from .settings import Settings

logger = logging.getLogger("switchboard.call")

# SIP attributes can land just after the participant joins; wait this long for them.
ATTRIBUTE_GRACE_S = 0.3

_KINDS: dict[int, CallerKind] = {
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP: "sip",
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD: "standard",
    rtc.ParticipantKind.PARTICIPANT_KIND_AGENT: "agent",
    rtc.ParticipantKind.PARTICIPANT_KIND_INGRESS: "ingress",
    rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS: "egress",
}
_CALLER_KINDS = [
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
]


async def handle_call(ctx: JobContext, settings: Settings, vad_model: vad.VAD) -> None:
    events = EventLog(settings.events_file, job_id=ctx.job.id, room=ctx.room.name)
    ctx.log_context_fields = {"job_id": ctx.job.id}
    ctx.add_shutdown_callback(lambda reason: _job_ended(events, reason))
    events.emit("job_started", agent_name=settings.agent_name, ai_mode=settings.ai_mode)

    caller = await _find_caller(ctx, settings, events)
    if caller is None:
        return
    events.emit("caller", caller=caller.log_fields())

    providers = build_providers(settings, caller)
    events.emit("providers", **providers.describe())
    session: AgentSession[None] = AgentSession(
        stt=providers.stt or NOT_GIVEN,
        llm=providers.llm or NOT_GIVEN,
        tts=providers.tts,
        vad=vad_model,
    )
    _end_when_caller_leaves(ctx, session, caller, events)
    session.on("close", lambda ev: events.emit("session_closed", reason=str(ev.reason)))

    agent = Agent(instructions=_instructions(caller))
    await session.start(
        agent=agent,
        room=ctx.room,
        room_options=room_io.RoomOptions(
            participant_identity=caller.identity,
            delete_room_on_close=True,
        ),
        record=False,
    )
    if settings.keyless:
        await _keyless_call(ctx, session, events)
    else:
        await session.generate_reply(instructions="Greet the caller and offer your help.")


async def _find_caller(ctx: JobContext, settings: Settings, events: EventLog) -> Caller | None:
    if ctx.is_fake_job():
        # console mode has no SIP participant: a simulated caller stands in, so the
        # same code paths run in the terminal.
        return caller_from_participant(
            "sip",
            "console-caller",
            {
                "sip.phoneNumber": settings.console_caller,
                "sip.trunkPhoneNumber": settings.console_called,
                "sip.callStatus": "active",
            },
        )
    await ctx.connect()
    try:
        participant = await asyncio.wait_for(
            ctx.wait_for_participant(kind=_CALLER_KINDS), settings.participant_timeout
        )
    except TimeoutError:
        logger.warning("no caller joined within %ss; ending the job", settings.participant_timeout)
        events.emit("no_caller", timeout_s=settings.participant_timeout)
        ctx.delete_room()
        ctx.shutdown("no caller joined")
        return None
    kind = _KINDS.get(participant.kind, "standard")
    if kind == "sip" and "sip.callID" not in participant.attributes:
        await _wait_for_attributes(ctx.room, participant, ATTRIBUTE_GRACE_S)
    return caller_from_participant(kind, participant.identity, dict(participant.attributes))


async def _wait_for_attributes(
    room: rtc.Room, participant: rtc.RemoteParticipant, budget_s: float
) -> None:
    arrived = asyncio.Event()

    def on_changed(changed: dict[str, str], who: rtc.Participant) -> None:
        if who.identity == participant.identity and "sip.callID" in who.attributes:
            arrived.set()

    room.on("participant_attributes_changed", on_changed)
    try:
        await asyncio.wait_for(arrived.wait(), budget_s)
    except TimeoutError:
        logger.info("SIP attributes still missing after %.0f ms; going on", budget_s * 1000)
    finally:
        room.off("participant_attributes_changed", on_changed)


def _end_when_caller_leaves(
    ctx: JobContext, session: AgentSession[None], caller: Caller, events: EventLog
) -> None:
    """The caller leaving ends the call for everyone, whatever the disconnect reason.

    The framework closes the session by itself only for some reasons (not for
    USER_UNAVAILABLE or SIP_TRUNK_FAILURE), so we do it for all of them.
    """

    def on_disconnected(participant: rtc.RemoteParticipant) -> None:
        if participant.identity != caller.identity:
            return
        reason = rtc.DisconnectReason.Name(participant.disconnect_reason or rtc.DisconnectReason.UNKNOWN_REASON)
        events.emit("caller_left", reason=reason)
        session.shutdown(drain=False)
        ctx.delete_room()
        ctx.shutdown(f"caller left ({reason})")

    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        if "sip.callStatus" in changed:
            events.emit(
                "call_status", identity=participant.identity, status=changed["sip.callStatus"]
            )

    ctx.room.on("participant_disconnected", on_disconnected)
    ctx.room.on("participant_attributes_changed", on_attributes)


async def _keyless_call(ctx: JobContext, session: AgentSession[None], events: EventLog) -> None:
    """No AI configured: say so honestly, then hang up once the words have been heard."""
    text = load_prompt("keyless")
    handle = session.say(text, allow_interruptions=False)
    events.emit("agent_said", text=text)
    await handle.wait_for_playout()
    if not ctx.room.isconnected() or not ctx.room.remote_participants:
        return  # the caller hung up first; _end_when_caller_leaves has cleaned up
    events.emit("agent_hangup", reason="keyless")
    await ctx.delete_room()
    ctx.shutdown("keyless call complete")


def _instructions(caller: Caller) -> str:
    details = "\n".join(f"- {k}: {v!r}" for k, v in caller.log_fields().items() if v)
    return load_prompt("default").replace("{call_details}", details)


async def _job_ended(events: EventLog, reason: str) -> None:
    events.emit("job_ended", reason=reason)
