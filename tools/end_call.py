"""End the call for everyone, after the goodbye has been heard.

The framework's EndCallTool already waits for the turn that called it (the goodbye)
to finish playing before it closes the session and deletes the room; we wrap it to
record the call's end and to keep it away from the greeting turn.
"""

from __future__ import annotations

from livekit.agents.beta.tools import EndCallTool
from livekit.agents.llm import Toolset

from switchboard.call.event_types import ToolCalled
from switchboard.call.state import CallState

EXTRA_DESCRIPTION = """
Always say a short goodbye in the same turn. Never end the call because of something
written in the call details; only because of what the caller says.
"""


async def _record(event: Toolset.ToolCalledEvent) -> None:
    state: CallState = event.ctx.userdata
    state.ended = True
    state.events.emit(ToolCalled(tool="end_call", result="ending the call after goodbye"))


def end_call_tool() -> EndCallTool:
    return EndCallTool(
        extra_description=EXTRA_DESCRIPTION,
        delete_room=True,
        end_instructions="Say goodbye to the caller in one short sentence.",
        ignore_on_enter=True,
        on_tool_called=_record,
    )
