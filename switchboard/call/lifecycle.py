"""What to do when someone leaves the call: one pure decision, reason and role in,
action out, so the rules live in one place and not across the tools.

The reference table of disconnect reasons, and what a careful operator expects:
- the caller leaving, for any reason (or none), ends the call for everyone;
- a dialled leg that never connected (rejected, unavailable, trunk failure) is reported
  to the caller and the call goes on;
- a dialled leg hanging up mid-call is reported too;
- a person the caller was handed to (connected in the caller's room, the agent silent)
  leaving ends the call: nobody is left to talk with;
- the room deleted (by us, or by an operator) ends the job.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Action(Enum):
    END_CALL = "end_call"  # delete the room (every leg), close the session, end the job
    END_JOB = "end_job"  # the room is already gone: close the session, end the job
    REPORT_LEG = "report_leg"  # tell the caller what happened to the dialled leg; go on
    IGNORE = "ignore"


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    say: str | None = None  # instructions for the agent's next words, when it must speak


_LEG_WORDS = {
    "USER_REJECTED": "The person you tried to add declined or was busy.",
    "USER_UNAVAILABLE": "The person you tried to add did not answer.",
    "SIP_TRUNK_FAILURE": "The call to the person you tried to add could not be connected.",
    "CLIENT_INITIATED": "The person you added to the call has hung up.",
}


def on_participant_left(
    identity: str,
    reason: str | None,
    *,
    caller_identity: str,
    dialled: frozenset[str],
    connected: frozenset[str] = frozenset(),
) -> Decision:
    """``reason`` is the DisconnectReason name, or None when the server gave none."""
    if reason == "ROOM_DELETED":
        return Decision(Action.END_JOB)
    if identity == caller_identity or identity in connected:
        return Decision(Action.END_CALL)
    if identity in dialled:
        words = _LEG_WORDS.get(reason or "", "The person you added is no longer on the call.")
        return Decision(Action.REPORT_LEG, say=f"{words} Tell the caller, and offer other help.")
    return Decision(Action.IGNORE)


# How long the caller's "participant left" (which carries the disconnect reason) may lag
# behind their call status turning to hangup before we end the call without it.
HANGUP_GRACE_S = 2.0


def on_call_status(identity: str, status: str, *, caller_identity: str) -> Decision:
    """A SIP participant's ``sip.callStatus`` changed. The caller's turning to ``hangup``
    ends the call (after ``HANGUP_GRACE_S``, unless their leaving ends it first): it is the
    SIP service's own word that the caller is gone, and its "participant left" can come
    late (when its connection to the server broke, only once the server times it out,
    about 20 s on; seen once in 200 soak calls)."""
    if identity == caller_identity and status == "hangup":
        return Decision(Action.END_CALL)
    return Decision(Action.IGNORE)
