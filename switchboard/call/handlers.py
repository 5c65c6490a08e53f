"""Following a call once it runs: participants leaving (decided by `lifecycle`), SIP
call status changes, the transcript and the usage figures, all as call events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, JobContext
from livekit.agents.metrics import ModelUsage

from switchboard.call.event_types import (
    CallerLeft,
    CallStatus,
    JobEnded,
    ParticipantLeft,
    RoomDisconnected,
    Transcript,
)
from switchboard.call.events import EventLog
from switchboard.call.keypad import mask_keypresses
from switchboard.call.latency import speaking_times, turn_figures
from switchboard.call.lifecycle import HANGUP_GRACE_S, Action, on_call_status, on_participant_left
from switchboard.call.state import CallState

logger = logging.getLogger("switchboard.call")


def follow_the_call(ctx: JobContext, session: AgentSession[CallState], state: CallState) -> None:
    """Act on every participant leaving, as `lifecycle.on_participant_left` decides, and
    log every SIP call status change. The framework closes the session by itself only for
    some disconnect reasons, so we never rely on it."""
    events = state.events

    ending = False

    def end_call(reason: str | None) -> None:
        nonlocal ending
        # The caller's hang-up is seen twice (as a call status and as leaving); the room
        # may be gone already (deleted by an operator, or by the agent's own goodbye).
        if ending or not ctx.room.isconnected():
            return
        ending = True
        events.emit(CallerLeft(reason=reason or "UNKNOWN"))
        session.shutdown(drain=False)
        ctx.delete_room()
        ctx.shutdown(f"caller left ({reason})")

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
            connected=frozenset(state.connected),
        )
        events.emit(
            ParticipantLeft(
                identity=participant.identity, reason=reason, action=decision.action.value
            )
        )
        if decision.action is Action.END_CALL:
            end_call(reason)
        elif decision.action is Action.END_JOB:
            session.shutdown(drain=False)
            ctx.shutdown("room deleted")
        elif decision.action is Action.REPORT_LEG:
            state.dialled.remove(participant.identity)
            if decision.say and session.llm is not None:
                session.generate_reply(instructions=decision.say)

    def on_attributes(changed: dict[str, str], participant: rtc.Participant) -> None:
        if "sip.callStatus" in changed:
            status = changed["sip.callStatus"]
            state.call_statuses[participant.identity] = status
            events.emit(CallStatus(identity=participant.identity, status=status))
            decision = on_call_status(
                participant.identity, status, caller_identity=state.caller.identity
            )
            if decision.action is Action.END_CALL:
                # Ending now would lose the disconnect reason that the leaving brings.
                asyncio.get_running_loop().call_later(HANGUP_GRACE_S, end_call, "CALLER_HANGUP")

    def on_room_gone(reason: rtc.DisconnectReason.ValueType) -> None:
        events.emit(RoomDisconnected(reason=rtc.DisconnectReason.Name(reason)))
        if reason == rtc.DisconnectReason.PARTICIPANT_REMOVED:
            # Removed through the server's API: by the guardian, replacing an agent it
            # judged dead (``call.liveness``), or by an operator. The call is someone else's.
            state.replaced = True
        # Close the session too: a speech still waiting to play out must not hold the job.
        session.shutdown(drain=False)
        ctx.shutdown("room disconnected")

    ctx.room.on("participant_disconnected", on_disconnected)
    ctx.room.on("participant_attributes_changed", on_attributes)
    ctx.room.on("disconnected", on_room_gone)


def usage_of(session: AgentSession[CallState]) -> dict[str, Any]:
    try:
        return {"models": [usage_fields(u) for u in session.usage.model_usage]}
    except Exception:
        logger.exception("could not read the session's usage figures")
        return {}


def usage_fields(usage: ModelUsage) -> dict[str, Any]:
    """One model's usage as a JSON object: the figures that are not zero (the framework's
    own display of it skips those too), not its Python repr."""
    return {k: v for k, v in usage.model_dump().items() if v not in (0, 0.0)}


def record_transcript(events: EventLog, item: object) -> None:
    # Messages carry a role and text; function calls and handoffs are recorded elsewhere.
    role = getattr(item, "role", None)
    text = getattr(item, "text_content", None)
    # When the words were said: an agent's line is added to the conversation once it has
    # been played out, which can be after the hang-up it preceded.
    said_at = getattr(item, "created_at", None)
    if role and text:
        metrics = getattr(item, "metrics", None)
        figures: dict[str, float] = {}
        if isinstance(metrics, Mapping):
            figures = turn_figures(metrics)
            if times := speaking_times(metrics):
                logger.debug("turn timing", extra={"role": role, **times})
        interrupted = getattr(item, "interrupted", False) is True
        events.emit(
            Transcript(
                role=role,
                text=mask_keypresses(text),
                said_at=said_at if isinstance(said_at, float) else None,
                latency=figures or None,
                interrupted=True if interrupted else None,
            )
        )


async def job_ended(events: EventLog, reason: str) -> None:
    events.emit(JobEnded(reason=reason))
