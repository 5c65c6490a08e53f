"""Tell the caller who is on the call, from the server's view."""

from __future__ import annotations

import logging

from livekit import api
from livekit.agents import RunContext, ToolError, function_tool

from switchboard.call.event_types import ToolCalled, ToolFailed
from switchboard.call.roster import describe_participants
from switchboard.call.state import CallState

logger = logging.getLogger("switchboard.tools")

DESCRIPTION = """
Find out who is on this call right now (the caller, you, and anyone added).
Call when: the caller asks who is on the line, or you need to know whether a person you
added has joined. Do not call when: you already know from this turn.
Numbers come back masked; never guess the hidden digits.
"""


@function_tool(name="list_participants", description=DESCRIPTION)
async def list_participants(context: RunContext[CallState]) -> str:
    state = context.userdata
    try:
        listing = await state.server().room.list_participants(
            api.ListParticipantsRequest(room=state.room_name)
        )
    except Exception:
        logger.exception("list_participants: the LiveKit API failed")
        state.events.emit(ToolFailed(tool="list_participants"))
        raise ToolError("I can't see who is on the call right now.") from None
    answer = describe_participants(
        listing.participants,
        caller_identity=state.caller.identity,
        agent_identity=state.agent_identity,
        dialled=state.dialled,
    )
    state.events.emit(ToolCalled(tool="list_participants", result=answer))
    return answer
