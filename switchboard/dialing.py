"""What a dial's outcome means for the caller: pure words for SIP results."""

from __future__ import annotations

from dataclasses import dataclass


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
