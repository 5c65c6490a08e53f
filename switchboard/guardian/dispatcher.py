"""Carry out a decision against the server: dispatch, transfer, or end the room.

Every action is logged and emitted as an event with the room's SID and the caller's number
masked: room names made by SIP dispatch rules contain the caller's number, so they are
never logged.
"""

from __future__ import annotations

import logging
import uuid

from livekit import api

from switchboard.guardian.decisions import (
    LEASE_MARGIN_S,
    LEASE_TTL_S,
    EndRoom,
    Policy,
    RemoveAgents,
    SendAgent,
    Transfer,
    lease_holder,
)
from switchboard.guardian.events import (
    AgentsRemoved,
    GuardianEvents,
    Overflowed,
    Redispatched,
    Resumed,
)
from switchboard.guardian.room import (
    LEASE_SUFFIX,
    RoomView,
    dispatch_from_api,
    dispatch_metadata,
    lease_metadata,
)
from switchboard.numbers import mask_number

logger = logging.getLogger("switchboard.guardian")


class Dispatcher:
    def __init__(self, lk: api.LiveKitAPI, policy: Policy, events: GuardianEvents) -> None:
        self._lk = lk
        self._policy = policy
        self._events = events
        self.guardian_id = uuid.uuid4().hex[:12]  # this process, in the leases it takes

    async def acquire(self, room: RoomView, now: float) -> bool:
        """True when this guardian may act in ``room``: it holds the room's lease, or has
        just taken it. False when another guardian holds it (that one acts)."""
        holder = lease_holder(room.dispatches, now, LEASE_TTL_S)
        if holder is not None and holder.lease != self.guardian_id:
            return False
        if holder is not None and holder.created_at > now - (LEASE_TTL_S - LEASE_MARGIN_S):
            return True
        made = dispatch_from_api(
            await self._lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=self._policy.agent_name + LEASE_SUFFIX,
                    room=room.name,
                    metadata=lease_metadata(self.guardian_id),
                )
            )
        )
        listed = tuple(
            dispatch_from_api(d) for d in await self._lk.agent_dispatch.list_dispatch(room.name)
        )
        winner = lease_holder(listed, made.created_at, LEASE_TTL_S)
        if winner is not None and winner.lease == self.guardian_id:
            return True
        await self._delete(room, made.id)
        logger.info("room %s: another guardian holds it; leaving it to that one", room.sid)
        return False

    async def send_agent(self, room: RoomView, action: SendAgent) -> None:
        """Dispatch our agent (under this guardian's lease on the room), once the agents
        judged dead are out of the room: should one be only slow, it must not stay."""
        await self._remove(room, action.remove)
        for dispatch_id in action.supersede:
            await self._delete(room, dispatch_id)
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
        kind = Resumed if action.mark.resume else Redispatched
        self._events.emit(
            kind(
                room_id=room.sid,
                caller_number=mask_number(action.caller.number),
                dispatch_id=created.id,
                reason=action.reason,
                attempt=action.mark.attempt,
                waited_s=round(created.created_at - action.mark.since, 3),
                superseded=list(action.supersede),
                removed=list(action.remove),
            )
        )

    async def remove_agents(self, room: RoomView, action: RemoveAgents) -> None:
        await self._remove(room, action.identities)
        self._events.emit(
            AgentsRemoved(
                room_id=room.sid,
                caller_number=mask_number(action.caller.number),
                identities=list(action.identities),
            )
        )

    async def transfer(self, room: RoomView, action: Transfer, now: float) -> None:
        """REFER the caller to the overflow destination; the room ends later if they stay.
        A lease marked "transferred" first tells every guardian it was done (a second REFER
        while the first is under way could break the transfer)."""
        await self._lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(
                agent_name=self._policy.agent_name + LEASE_SUFFIX,
                room=room.name,
                metadata=lease_metadata(self.guardian_id, transferred=True),
            )
        )
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
        self._events.emit(
            Overflowed(
                room_id=room.sid,
                caller_number=mask_number(action.caller.number),
                action="transfer",
                outcome=outcome,
                to=_mask_uri(action.to),
                waited_s=round(now - action.since, 3),
            )
        )

    async def end_room(self, room: RoomView, action: EndRoom, now: float) -> None:
        try:
            await self._lk.room.delete_room(api.DeleteRoomRequest(room=room.name))
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:
                raise
        self._events.emit(
            Overflowed(
                room_id=room.sid,
                caller_number=mask_number(action.caller.number),
                action="end_room",
                reason=action.reason,
                waited_s=round(now - action.since, 3),
            )
        )

    async def _remove(self, room: RoomView, identities: tuple[str, ...]) -> None:
        for identity in identities:
            try:
                await self._lk.room.remove_participant(
                    api.RoomParticipantIdentity(room=room.name, identity=identity)
                )
            except api.TwirpError as e:
                if e.code != api.TwirpErrorCode.NOT_FOUND:  # gone already: fine
                    raise

    async def _delete(self, room: RoomView, dispatch_id: str) -> None:
        try:
            await self._lk.agent_dispatch.delete_dispatch(dispatch_id, room.name)
        except api.TwirpError as e:
            if e.code != api.TwirpErrorCode.NOT_FOUND:  # another guardian was first: fine
                raise


def _mask_uri(uri: str) -> str:
    """An overflow URI with its user part masked (it is often a phone number)."""
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.partition("@")
    return f"{scheme}:{mask_number(user) or ''}{at}{host}"
