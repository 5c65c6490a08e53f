"""The call record, fed by the call's events: one place maps what happened to the record.

The record is created when the call is answered and completed when the job ends, so a
worker that dies mid-call leaves a record that `switchboard calls` shows as incomplete.
Nothing here may delay or break the call: writes run in the background, bounded, and
failures are logged by the recorder.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from switchboard.call.event_types import (
    AgentHangup,
    CallerLeft,
    CallEvent,
    CallStatus,
    DialDecision,
    ParticipantLeft,
    PinAccepted,
    PinLockedOut,
    PinLockout,
    PinLockoutEnded,
    RoomDisconnected,
    ToolCalled,
    Transcript,
)
from switchboard.caller import Caller
from switchboard.data.records.model import CallRecord, StatusChange, ToolCall, Turn
from switchboard.data.records.recorder import CallRecorder
from switchboard.numbers import mask_numbers_in

logger = logging.getLogger("switchboard.records")

# Timeline entries a resumed call reads back (``call.resume``). The caller's statuses are
# bare ``sip.callStatus`` values (active, hangup, ...), everyone else's "identity: ...":
# neither can be spelled like these, so a participant cannot forge them.
DIAL_ALLOWED = "dial allowed"  # noted before the dial is placed: it counts even unfinished
PIN_VERIFIED = "pin verified"


@dataclass(frozen=True)
class Continuation:
    """This job takes over a call whose record another job started: ``read`` is the
    record's read (started early, awaited up to ``wait_s`` here), ``status`` the timeline
    entry that says so."""

    read: asyncio.Future[CallRecord | None]
    status: str
    wait_s: float


class RecordSink:
    """An EventLog listener that turns call events into a CallRecorder's entries; the
    events that say nothing the record keeps are let through."""

    def __init__(
        self, recorder: CallRecorder, caller: Caller, continues: Continuation | None = None
    ) -> None:
        self.recorder = recorder
        self.caller = caller
        self.continues = continues
        self.disconnect_reason: str | None = None
        self._started: asyncio.Task[None] | None = None

    def start(self, *, room: str, route: str, providers: dict[str, str]) -> None:
        self._started = asyncio.create_task(self._start(room, route, providers))

    async def _start(self, room: str, route: str, providers: dict[str, str]) -> None:
        if (continues := self.continues) is not None:
            done, _ = await asyncio.wait({continues.read}, timeout=continues.wait_s)
            if not done or continues.read.exception() is not None:
                # Writing now would replace the earlier record (one row per call) with
                # this job's half: better leave it as the lost job left it.
                logger.warning("call record not continued: it could not be read")
                return
            if (record := continues.read.result()) is not None:
                status = StatusChange(continues.status, self.recorder.now())
                await self.recorder.resume(record, route=route, status=status, providers=providers)
                return
        await self.recorder.start(
            call_id=self.caller.call_id or room,
            room=room,
            route=route,
            caller_number=self.caller.phone_number,
            called_number=self.caller.called_number,
            providers=providers,
        )
        if continues is not None:  # no record yet: the lost job never wrote one
            self.recorder.add_status(StatusChange(continues.status, self.recorder.now()))

    def __call__(self, event: CallEvent) -> None:
        r = self.recorder
        match event:
            case CallStatus(identity=who, status=status):
                # Another participant is named, by an identity that may hold a number.
                other = who != self.caller.identity
                named = f"{mask_numbers_in(who)}: {status}" if other else status
                r.add_status(StatusChange(named, r.now()))
            case Transcript(
                role=role, text=text, said_at=said_at, latency=latency, interrupted=interrupted
            ):
                # Timed when it was said, so the timeline keeps a line before the
                # hang-up that followed it, however late the framework reports it.
                at = r.now() if said_at is None else said_at
                r.add_turn(Turn(role, text, at, latency or {}, bool(interrupted)))
            case ToolCalled(tool=tool, arguments=arguments, result=result):
                r.add_tool_call(ToolCall(tool, arguments or {}, result, r.now()))
            case DialDecision(allowed=True):
                r.add_status(StatusChange(DIAL_ALLOWED, r.now()))
            case PinAccepted():
                r.add_status(StatusChange(PIN_VERIFIED, r.now()))
            case PinLockout(seconds=seconds):
                r.add_status(StatusChange(f"pin lockout ({seconds:.0f} s)", r.now()))
            case PinLockedOut():
                r.add_status(StatusChange("pin locked out", r.now()))
            case PinLockoutEnded():
                r.add_status(StatusChange("pin lockout ended", r.now()))
            case DialDecision(allowed=False, policy=policy, reason=reason):
                refused = ToolCall(
                    "add_participant", {"policy": policy}, f"refused: {reason}", r.now()
                )
                r.add_tool_call(refused)
            case ParticipantLeft(identity=who, reason=reason) if who != self.caller.identity:
                # A dialled leg's end, with the server's reason, belongs in the call's timeline.
                left = f"{mask_numbers_in(who)}: left ({reason or 'UNKNOWN'})"
                r.add_status(StatusChange(left, r.now()))
            case CallerLeft(reason=reason) | RoomDisconnected(reason=reason):
                self._ended(reason)
            case AgentHangup():
                self._ended("AGENT_HANGUP")

    def _ended(self, reason: str) -> None:
        # The first cause seen is the call's: the caller's hang-up is followed by the
        # room's disconnection, which must not overwrite it.
        self.disconnect_reason = self.disconnect_reason or reason

    def abandon(self) -> None:
        """Another job took the call over: the record is its to continue."""
        if self._started is not None:
            self._started.cancel()
        self.recorder.abandon()

    async def finish(self, usage: dict[str, Any] | None) -> None:
        if self._started is not None:
            await asyncio.gather(self._started, return_exceptions=True)
        await self.recorder.finish(self.disconnect_reason, usage)
