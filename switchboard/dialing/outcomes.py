"""What a dial's outcome means for the caller: pure words for SIP results."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from livekit import api

logger = logging.getLogger("switchboard.tools")


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str  # answered | busy | declined | no_answer | unreachable | failed
    spoken: str  # what the model should tell the caller


ANSWERED = Outcome("answered", "They answered and are now on the call.")
_BY_STATUS = {
    486: Outcome("busy", "The line was busy."),
    600: Outcome("busy", "The line was busy."),
    603: Outcome("declined", "They declined the call."),
    408: Outcome("no_answer", "Nobody answered."),
    480: Outcome("no_answer", "Nobody answered."),
    487: Outcome("no_answer", "Nobody answered."),
    404: Outcome("unreachable", "That number could not be reached."),
    410: Outcome("unreachable", "That number could not be reached."),
    484: Outcome("unreachable", "That number could not be reached."),
}
FAILED = Outcome("failed", "The call could not be placed because of a technical problem.")
NO_ANSWER = _BY_STATUS[408]
# The trunk never answered the INVITE at all (nothing listening, network down): not the
# person's fault, and worth saying differently from a phone that rang out.
TRUNK_DOWN = Outcome(
    "unreachable", "The call could not be connected; the phone line is not responding."
)


def outcome_for_status(sip_status: int | None) -> Outcome:
    """Map the SIP final status of a failed dial to what the caller is told."""
    if sip_status is None:
        return FAILED
    return _BY_STATUS.get(sip_status, FAILED)


def outcome_for_timeout(last_call_status: str | None) -> Outcome:
    """A dial that timed out (the SIP service's plain 408): a leg that rang was not
    answered; one that never rang never reached a phone."""
    return NO_ANSWER if last_call_status in ("ringing", "active") else TRUNK_DOWN


def outcome_for_dial_error(error: BaseException, last_call_status: str | None) -> Outcome:
    """What a failed CreateSIPParticipant (wait_until_answered) means for the caller, from
    the error and the dialled leg's last sip.callStatus; one log line for the unexpected."""
    if isinstance(error, api.SipCallError):
        logger.info("the dialled leg failed", extra={"sip_status": error.sip_status_code})
        return outcome_for_status(error.sip_status_code)
    # The SIP service gives up with a plain 408 "sip request timed out", both when the
    # phone rang out and when the trunk never answered the INVITE; our own client's
    # timeout means the same.
    if isinstance(error, TimeoutError) or getattr(error, "status", None) == 408:
        return outcome_for_timeout(last_call_status)
    if isinstance(error, api.ServerError):
        status = getattr(error, "status", None)
        logger.warning("the LiveKit API refused the dial: %s (HTTP %s)", error.code, status)
    else:
        logger.error("the LiveKit API failed on a dial: %r", error)
    return FAILED
