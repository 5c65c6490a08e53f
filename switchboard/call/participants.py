"""Finding the caller in the room: wait for them (never forever), read their attributes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from livekit import rtc
from livekit.agents import JobContext

from switchboard.caller import Caller, CallerKind, caller_from_participant
from switchboard.config.settings import Settings

logger = logging.getLogger("switchboard.call")

# SIP attributes can land just after the participant joins; wait this long for them.
ATTRIBUTE_GRACE_S = 0.3

KINDS: Mapping[int, CallerKind] = {
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP: "sip",
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD: "standard",
    rtc.ParticipantKind.PARTICIPANT_KIND_AGENT: "agent",
    rtc.ParticipantKind.PARTICIPANT_KIND_INGRESS: "ingress",
    rtc.ParticipantKind.PARTICIPANT_KIND_EGRESS: "egress",
}
CALLER_KINDS = [
    rtc.ParticipantKind.PARTICIPANT_KIND_SIP,
    rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD,
]


def console_caller(settings: Settings, run_id: str) -> Caller:
    """Console mode has no SIP participant: a simulated caller stands in, described by the
    settings, so the same routing runs in the terminal. Its call ID is the run's (the
    framework's simulated job ID), so each console run leaves a record of its own."""
    attributes = {
        "sip.callID": f"console-{run_id}",
        "sip.phoneNumber": settings.console.caller,
        "sip.trunkPhoneNumber": settings.console.called,
        "sip.callStatus": "active",
        **settings.console.attributes,
    }
    return caller_from_participant("sip", "console-caller", attributes)


class NoCallerError(Exception):
    """Nobody to answer; the message says why, for the log line that ends the job."""


async def wait_for_caller(ctx: JobContext, timeout_s: float) -> Caller:
    """The first SIP or WebRTC participant as a Caller; NoCallerError after ``timeout_s``."""
    await ctx.connect()
    try:
        participant = await asyncio.wait_for(ctx.wait_for_participant(kind=CALLER_KINDS), timeout_s)
    except TimeoutError:
        raise NoCallerError(f"no caller joined within {timeout_s:g} s") from None
    except RuntimeError:
        # The room went away first: the caller hung up before a process took the job, a
        # late second dispatch for a deleted room, or a room nobody joined closed by the
        # server's empty timeout.
        raise NoCallerError("the room closed before a caller joined") from None
    kind = KINDS.get(participant.kind, "standard")
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
