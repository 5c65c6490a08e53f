"""The one gate every dial from our trunk passes (a dial-out, a warm transfer's call):
the policy's decision, logged as an event; the trunk; the per-caller history."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from livekit.agents import ToolError

from switchboard.call.event_types import DialDecision
from switchboard.call.state import CallState
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing.policy import (
    Decision,
    Destination,
    DialPolicy,
    DialRequest,
    Dictated,
    Named,
    decide,
)

logger = logging.getLogger("switchboard.tools")


async def pass_dial_gate(
    state: CallState,
    target: Named | Dictated,
    policy: DialPolicy,
    destinations: Mapping[str, Destination],
    history: SharedDialHistory,
    *,
    no_trunk: str,
    needs_trunk: bool = True,
) -> Decision:
    """The allowed decision, with the dial counted; ToolError (words for the caller, never
    the rule that refused) otherwise. ``no_trunk`` is said when no outbound trunk is set
    and the dial needs one (a REFER does not: the caller's own network places it)."""
    call_key = state.caller.call_id or state.room_name
    now = time.time()
    decision = decide(
        DialRequest(target, state.caller.phone_number, call_key),
        # The number this call came in on is the line's own, whatever telephony.toml says.
        policy.with_own_numbers(_spellings(state.caller.called_number)),
        destinations,
        await history.view(state.caller.phone_number, call_key, now),
        now,
    )
    state.events.emit(dial_decision_event(decision))
    if not decision.allowed or decision.target is None:
        raise ToolError(decision.spoken)
    if needs_trunk and not state.outbound_trunk_id:
        logger.error("no outbound trunk: set SWITCHBOARD_OUTBOUND_TRUNK_ID to dial out")
        raise ToolError(no_trunk)
    await history.record(state.caller.phone_number, call_key, now)
    state.dial_attempts += 1
    return decision


def _spellings(called: str | None) -> tuple[str, ...]:
    # The SIP service reports it in E.164; a trunk that drops the "+" must not open a loop.
    digits = (called or "").strip().lstrip("+")
    return (f"+{digits}",) if digits.isdigit() else ()


def dial_decision_event(decision: Decision) -> DialDecision:
    """The decision as its call event: the decision's log fields (numbers masked there)."""
    log = decision.log

    def text(key: str) -> str | None:
        value = log.get(key)
        return None if value is None else str(value)

    return DialDecision(
        allowed=decision.allowed,
        reason=text("reason"),
        policy=str(log["policy"]),
        call_id=str(log["call_id"]),
        caller=text("caller"),
        destination=text("destination"),
        number=text("number"),
        region=text("region"),
        unsafe_override=text("unsafe_override"),
    )
