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

from switchboard.caller import Caller
from switchboard.data.records.recorder import CallRecorder

logger = logging.getLogger("switchboard.records")


class RecordSink:
    """An EventLog listener that turns call events into a CallRecorder's entries."""

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

    def __call__(self, event: str, fields: dict[str, Any]) -> None:
        r = self.recorder
        if event == "call_status":
            who = fields.get("identity")
            status = str(fields.get("status"))
            r.add_status(status if who == self.caller.identity else f"{who}: {status}")
        elif event == "transcript":
            r.add_turn(str(fields.get("role")), str(fields.get("text")))
        elif event == "tool_call":
            r.add_tool_call(str(fields.get("tool")), fields.get("arguments"), fields.get("result"))
        elif event == "dial_decision" and not fields.get("allowed"):
            r.add_tool_call("add_participant", {"policy": fields.get("policy")},
                            f"refused: {fields.get('reason')}")  # fmt: skip
        elif event == "participant_left" and fields.get("identity") != self.caller.identity:
            # A dialled leg's end, with the server's reason, belongs in the call's timeline.
            r.add_status(f"{fields.get('identity')}: left ({fields.get('reason') or 'UNKNOWN'})")
        elif event == "caller_left":
            self.disconnect_reason = self.disconnect_reason or str(fields.get("reason"))
        elif event == "agent_hangup":
            self.disconnect_reason = self.disconnect_reason or "AGENT_HANGUP"
        elif event == "room_disconnected":
            self.disconnect_reason = self.disconnect_reason or str(fields.get("reason"))

    async def finish(self, usage: dict[str, Any] | None) -> None:
        if self._started is not None:
            await asyncio.gather(self._started, return_exceptions=True)
        await self.recorder.finish(self.disconnect_reason, usage)
