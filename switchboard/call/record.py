"""The call record, fed by the call's events: one place maps what happened to the record.

The record is created when the call is answered and completed when the job ends, so a
worker that dies mid-call leaves a record that `switchboard calls` shows as incomplete.
Nothing here may delay or break the call: writes run in the background, bounded, and
failures are logged by the recorder.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from switchboard.call.event_types import (
    AgentHangup,
    CallerLeft,
    CallEvent,
    CallStatus,
    DialDecision,
    ParticipantLeft,
    RoomDisconnected,
    ToolCalled,
    Transcript,
)
from switchboard.caller import Caller
from switchboard.data.records.model import StatusChange, ToolCall, Turn
from switchboard.data.records.recorder import CallRecorder

logger = logging.getLogger("switchboard.records")


class RecordSink:
    """An EventLog listener that turns call events into a CallRecorder's entries; the
    events that say nothing the record keeps are let through."""

    def __init__(self, recorder: CallRecorder, caller: Caller) -> None:
        self.recorder = recorder
        self.caller = caller
        self.disconnect_reason: str | None = None
        self._started: asyncio.Task[None] | None = None

    def start(self, *, room: str, route: str, providers: dict[str, str]) -> None:
        self._started = asyncio.create_task(
            self.recorder.start(
                call_id=self.caller.call_id or room,
                room=room,
                route=route,
                caller_number=self.caller.phone_number,
                called_number=self.caller.called_number,
                providers=providers,
            )
        )

    def __call__(self, event: CallEvent) -> None:
        r = self.recorder
        match event:
            case CallStatus(identity=who, status=status):
                named = status if who == self.caller.identity else f"{who}: {status}"
                r.add_status(StatusChange(named, r.now()))
            case Transcript(role=role, text=text):
                r.add_turn(Turn(role, text, r.now()))
            case ToolCalled(tool=tool, arguments=arguments, result=result):
                r.add_tool_call(ToolCall(tool, arguments or {}, result, r.now()))
            case DialDecision(allowed=False, policy=policy, reason=reason):
                refused = ToolCall(
                    "add_participant", {"policy": policy}, f"refused: {reason}", r.now()
                )
                r.add_tool_call(refused)
            case ParticipantLeft(identity=who, reason=reason) if who != self.caller.identity:
                # A dialled leg's end, with the server's reason, belongs in the call's timeline.
                r.add_status(StatusChange(f"{who}: left ({reason or 'UNKNOWN'})", r.now()))
            case CallerLeft(reason=reason) | RoomDisconnected(reason=reason):
                self._ended(reason)
            case AgentHangup():
                self._ended("AGENT_HANGUP")

    def _ended(self, reason: str) -> None:
        # The first cause seen is the call's: the caller's hang-up is followed by the
        # room's disconnection, which must not overwrite it.
        self.disconnect_reason = self.disconnect_reason or reason

    async def finish(self, usage: dict[str, Any] | None) -> None:
        if self._started is not None:
            await asyncio.gather(self._started, return_exceptions=True)
        await self.recorder.finish(self.disconnect_reason, usage)
