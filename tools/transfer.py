"""Transfer of the caller to a destination the route names: cold (SIP REFER), or warm
(``warm = true``: the agent calls the person and briefs them first, tools/warm_transfer.py).

The model can only pick from the route's destinations (an enum in the schema); a number
the caller dictates is never a transfer target. The caller is told before the transfer,
and a failed transfer is said out loud so the conversation goes on.
"""

# No `from __future__ import annotations`: the tool schema is read from the annotations,
# which name values (the destinations) known only when the tool is built.
import logging
from collections.abc import Mapping
from typing import Annotated, Any

from livekit import api
from livekit.agents import RunContext, ToolError, function_tool
from livekit.agents.llm import FunctionTool
from pydantic import Field

from switchboard.call.caller_watch import REFER_SETTLE_S, CallerWatch, job_room
from switchboard.call.event_types import ToolCalled
from switchboard.call.state import CallState
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing.policy import Destination, DialPolicy, destination_problem, loop_number
from tools.warm_transfer import warm_transfer

logger = logging.getLogger("switchboard.tools")

DESCRIPTION = """
Hand the caller over to another team or person; you leave the call afterwards.
Call when: the caller asks to speak to one of the destinations below, and has agreed to
be transferred. Do not call when: the caller wants someone added while they stay with
you (use add_participant), or names someone not in the list.
Destinations:
"""
WARM_NOTE = " (you call them first and brief them while the caller holds)"


def listing(destinations: Mapping[str, Destination]) -> str:
    """The destinations as the model reads them: which ones are warm changes what it
    should tell the caller to expect."""
    return "\n".join(
        f"- {n}: {d.description}{WARM_NOTE if d.warm else ''}"
        for n, d in sorted(destinations.items())
    )


def transfer_tool(
    destinations: Mapping[str, Destination], policy: DialPolicy, history: SharedDialHistory
) -> FunctionTool[..., Any]:
    """``policy`` and ``history`` gate the warm transfers: each is a dial from our trunk."""
    names = sorted(destinations)

    @function_tool(name="transfer_call", description=DESCRIPTION + listing(destinations))
    async def transfer_call(
        context: RunContext[CallState],
        destination: Annotated[
            str, Field(description="Where to transfer.", json_schema_extra={"enum": names})
        ],
    ) -> str | None:
        state = context.userdata
        target = destinations.get(destination)
        if target is None:
            raise ToolError(f"I can transfer you to: {', '.join(names)}.")
        regions = policy.allowed_regions
        own = policy.own_numbers | {state.caller.called_number or ""}
        if destination_problem(target, regions).problem or loop_number(target, own, regions):
            logger.error("transfer: destination %s is restricted or a loop; not used", destination)
            raise ToolError("I can't transfer you there.")
        if state.transferred_to:
            raise ToolError("The transfer is already under way.")
        if target.warm:
            # None on success: the caller is talking with the person, nothing left to say.
            await warm_transfer(context, destination, target, policy, history)
            return None
        context.disallow_interruptions()
        await context.session.say(
            f"I'm transferring you to {target.description} now. Please hold.",
            allow_interruptions=False,
        )
        transfer_to = target.sip_uri or f"tel:{target.number}"
        asked = {"destination": destination}  # the tool call's arguments, for its event

        def transferred() -> None:  # once, from here or from the room's callbacks
            if state.transferred_to is None:
                state.transferred_to = destination
                state.events.emit(
                    ToolCalled(tool="transfer_call", arguments=asked, result="transferred")
                )

        # The caller's leg ending is the REFER's real outcome: livekit-sip (v1.8.0) can
        # answer the request with an error although the phone accepted the REFER (its 202
        # and NOTIFY race), and the caller is gone a moment later. Recorded from the room's
        # callback, so it stands even when the call's end cancels this tool.
        watch = CallerWatch(job_room(), state.caller.identity, on_gone=transferred)
        try:
            await state.server().sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=state.room_name,
                    participant_identity=state.caller.identity,
                    transfer_to=transfer_to,
                    play_dialtone=False,
                )
            )
        except Exception as e:
            if not await watch.gone_within(REFER_SETTLE_S):
                status = getattr(e, "sip_status_code", None)
                logger.warning("transfer failed", extra={"destination": destination, "sip": status})
                state.events.emit(
                    ToolCalled(tool="transfer_call", arguments=asked, result="failed")
                )
                raise ToolError(
                    "The transfer did not go through. Tell the caller, and offer other help."
                ) from None
            logger.info("transfer: reported failed, but the caller's leg ended: transferred")
        finally:
            watch.close()
        transferred()
        return "The caller has been transferred; the call with you is over."

    return transfer_call
