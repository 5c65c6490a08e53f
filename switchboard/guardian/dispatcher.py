"""Carry out a decision against the server: dispatch, transfer, or end the room.

Every action is logged and emitted as an event with the room's SID and the caller's number
masked: room names made by SIP dispatch rules contain the caller's number, so they are
never logged.
"""

from __future__ import annotations

import logging
from typing import Any

from livekit import api

from switchboard.call.events import EventLog
from switchboard.caller import mask_number
from switchboard.guardian.decisions import EndRoom, Policy, SendAgent, Transfer, lost_race
from switchboard.guardian.room import RoomView, dispatch_from_api, dispatch_metadata

logger = logging.getLogger("switchboard.guardian")


class Dispatcher:
    def __init__(self, lk: api.LiveKitAPI, policy: Policy, events: EventLog) -> None:
        self._lk = lk
        self._policy = policy
        self._events = events

    async def send_agent(self, room: RoomView, action: SendAgent) -> bool:
        """Dispatch our agent; False when another guardian's dispatch won the race."""
        for dispatch_id in action.supersede:
            await self._withdraw(room, dispatch_id)
        metadata = dispatch_metadata(
            action.mark,
            reason=action.reason,
            call_id=action.caller.call_id,
            previous_job=action.previous_job,
        )
        created = dispatch_from_api(
            await self._lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self._policy.agent_name, room=room.name, metadata=metadata
                )
            )
        )
        listed = await self._lk.agent_dispatch.list_dispatch(room.name)
        if lost_race(created, tuple(dispatch_from_api(d) for d in listed), self._policy):
            await self._withdraw(room, created.id)
            self._emit(
                "dispatch_withdrawn",
                room,
                action.caller.number,
                dispatch_id=created.id,
                why="another guardian dispatched to this room at the same moment",
            )
            return False
        event = "resumed" if action.mark.resume else "redispatched"
        self._emit(
            event,
            room,
            action.caller.number,
            dispatch_id=created.id,
            reason=action.reason,
            attempt=action.mark.attempt,
            waited_s=round(created.created_at - action.mark.since, 3),
            superseded=list(action.supersede),
        )
        return True

    async def transfer(self, room: RoomView, action: Transfer, now: float) -> None:
        """REFER the caller to the overflow destination; the room ends later if they stay."""
        try:
            await self._lk.sip.transfer_sip_participant(
                api.TransferSIPParticipantRequest(
                    room_name=room.name,
                    participant_identity=action.caller.identity,
                    transfer_to=action.to,
                    play_dialtone=False,
                )
            )
        except api.TwirpError as e:
            outcome = f"failed: {e.code}"
        else:
            outcome = "accepted"
        self._emit(
            "overflowed",
            room,
            action.caller.number,
            action="transfer",
            outcome=outcome,
            to=_mask_uri(action.to),
            waited_s=round(now - action.since, 3),
        )

    async def end_room(self, room: RoomView, action: EndRoom, now: float) -> None:
        try:
            await self._lk.room.delete_room(api.DeleteRoomRequest(room=room.name))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                raise
        self._emit(
            "overflowed",
            room,
            action.caller.number,
            action="end_room",
            reason=action.reason,
            waited_s=round(now - action.since, 3),
        )

    async def _withdraw(self, room: RoomView, dispatch_id: str) -> None:
        # livekit-server ends any job this dispatch still gets once it is deleted.
        try:
            await self._lk.agent_dispatch.delete_dispatch(dispatch_id, room.name)
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:  # another guardian was first: fine
                raise

    def _emit(self, event: str, room: RoomView, number: str | None, **fields: Any) -> None:
        self._events.emit(event, room_id=room.sid, caller_number=mask_number(number), **fields)
        logger.info(
            "%s: room %s, caller %s, %s",
            event,
            room.sid,
            mask_number(number) or "unknown",
            ", ".join(f"{k}={v}" for k, v in fields.items()),
        )


def _mask_uri(uri: str) -> str:
    """An overflow URI with its user part masked (it is often a phone number)."""
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.partition("@")
    return f"{scheme}:{mask_number(user) or ''}{at}{host}"
