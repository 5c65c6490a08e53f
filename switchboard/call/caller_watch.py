"""Whether the caller's leg has ended, for a REFER that reports an error although the
phone accepted it (the transfer tool's, the keypad menu's)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from livekit import rtc
from livekit.agents import get_job_context

# How long a REFER reported as failed may take to show as the caller's leg ending. The SIP
# service can report an error (its own timeout waiting for the far end's NOTIFY) for a
# REFER that worked: the leg then ends a little later, more than 3 s later on a loaded
# 2-core machine (seen in a lab run at load 17). Only a transfer that really failed waits
# this long before the agent speaks again.
REFER_SETTLE_S = 6.0


class CallerWatch:
    """Whether the caller's leg has ended: they left the room, or their
    ``sip.callStatus`` turned to hangup (which can come long before the leaving)."""

    def __init__(
        self, room: rtc.Room | None, identity: str, *, on_gone: Callable[[], None]
    ) -> None:
        self._room, self._identity, self._on_gone = room, identity, on_gone
        self._gone = asyncio.Event()
        if room is not None:  # None: no room to watch (a tool run outside a job)
            room.on("participant_disconnected", self._left)
            room.on("participant_attributes_changed", self._changed)

    def _left(self, participant: rtc.RemoteParticipant) -> None:
        if participant.identity == self._identity:
            self._mark()

    def _changed(self, changed: dict[str, str], participant: rtc.Participant) -> None:
        if participant.identity == self._identity and changed.get("sip.callStatus") == "hangup":
            self._mark()

    def _mark(self) -> None:
        if not self._gone.is_set():
            self._gone.set()
            self._on_gone()

    async def gone_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._gone.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        if self._room is not None:
            self._room.off("participant_disconnected", self._left)
            self._room.off("participant_attributes_changed", self._changed)


def job_room() -> rtc.Room | None:
    try:
        return get_job_context().room
    except RuntimeError:
        return None
