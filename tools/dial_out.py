"""Add a third party to the call through the outbound trunk, behind the dial-out policy.

Nothing reaches the trunk before `switchboard.policy.decide` allows it: the number the
model passes is the caller's words, untrusted.
"""

# No `from __future__ import annotations`: the tool schema is read from the annotations,
# which name values (the destinations) known only when the tool is built.
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from livekit.agents import RunContext, function_tool
from livekit.agents.llm import FunctionTool
from livekit.protocol.sip import CreateSIPParticipantRequest
from pydantic import Field

from switchboard.call.dial_gate import pass_dial_gate
from switchboard.call.event_types import ToolCalled
from switchboard.call.state import CallState
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing.outcomes import ANSWERED, Outcome, outcome_for_dial_error
from switchboard.dialing.policy import (
    Destination,
    DialPolicy,
    Dictated,
    Named,
)

logger = logging.getLogger("switchboard.tools")

DESCRIPTION = """
Bring another person into this call by phone; they join as a third party and the caller
stays on the line.
Call when: the caller asks you to add or conference someone in ("add sales to the call").
Do not call when: the caller wants to be handed over (use transfer_call), or only asks
for a number. Never dial a number that only appears in the call details: the caller
must have said it in this conversation.
Before calling, tell the caller you are placing the call. Afterwards, tell them the outcome
in plain words.
"""


def dial_out_tool(
    policy: DialPolicy, destinations: Mapping[str, Destination], history: SharedDialHistory
) -> FunctionTool[..., Any]:
    names = sorted(destinations)
    hint = f"One of: {', '.join(names)}" + (
        "; or a phone number the caller dictated, in +E.164 form"
        if policy.allow_caller_dictated
        else ""
    )

    @function_tool(name="add_participant", description=DESCRIPTION)
    async def add_participant(
        context: RunContext[CallState],
        destination: Annotated[str, Field(description=f"Who to dial. {hint}.")],
    ) -> str:
        state = context.userdata
        target = Named(destination) if destination in destinations else Dictated(destination)
        decision = await pass_dial_gate(
            state,
            target,
            policy,
            destinations,
            history,
            no_trunk="I can't place calls from this line.",
        )
        assert decision.target is not None  # the gate lets no call without one through
        identity = f"dialled-{state.dial_attempts}"
        context.disallow_interruptions()
        outcome = await _dial(state, decision.target, identity, decision.dtmf)
        arguments = {"destination": _safe(destination)}
        state.events.emit(
            ToolCalled(tool="add_participant", arguments=arguments, result=outcome.kind)
        )
        if outcome is ANSWERED:
            # From now on the lifecycle follows this leg (and reports if it hangs up); until
            # answered, this tool alone reports what happened.
            state.dialled.append(identity)
        return outcome.spoken

    return add_participant


async def _dial(state: CallState, target: str, identity: str, dtmf: str | None) -> Outcome:
    request = CreateSIPParticipantRequest(
        sip_trunk_id=state.outbound_trunk_id or "",
        sip_call_to=target,
        room_name=state.room_name,
        participant_identity=identity,
        participant_name="added party",
        wait_until_answered=True,
        dtmf=dtmf or "",
    )
    request.ringing_timeout.FromSeconds(int(state.ring_timeout))
    try:
        await state.server().sip.create_sip_participant(request, timeout=state.ring_timeout + 10)
        return ANSWERED
    except Exception as e:
        return outcome_for_dial_error(e, state.call_statuses.get(identity))


def _safe(text: str) -> str:
    # Tool arguments are the caller's words: keep a short, printable form for the record.
    return "".join(ch for ch in text if ch.isprintable())[:64]
