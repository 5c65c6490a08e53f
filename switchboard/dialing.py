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


def outcome_for_status(sip_status: int | None) -> Outcome:
    """Map the SIP final status of a failed dial to what the caller is told."""
    if sip_status is None:
        return FAILED
    return _BY_STATUS.get(sip_status, FAILED)
