"""The call's lease: this job says "still here" about every second (``data/leases.py``),
so that ``switchboard guardian`` replaces it seconds after it dies, not when livekit-server
notices (about 20 s).

A job can also be replaced while alive but too slow to say so (a long pause on a busy
machine): the guardian removes it from the room before the new agent comes, so there is
never a twin. Such a job is "replaced" (``CallState.replaced``): it learns it from the
server (removed from the room) or from its lease (another agent holds the call), and then
leaves the call to that agent: it does not delete the room, nor write its record, which
the new agent continues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from livekit.agents import JobContext
from sqlalchemy.exc import SQLAlchemyError

from switchboard.call.state import CallState
from switchboard.data import leases
from switchboard.data.db import Database

logger = logging.getLogger("switchboard.call")
T = TypeVar("T")

# A write slower than this is given up (the next refresh tries again): a refresh that
# lands late says "alive" for a moment the job may no longer be.
WRITE_TIMEOUT_S = 2 * leases.REFRESH_S
STORE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


class CallLease:
    """Holds ``call_id`` for ``holder`` (the agent participant's identity) while the call
    runs; ``on_lost`` is called once if another agent takes the call over."""

    def __init__(
        self,
        db: Database,
        call_id: str,
        holder: str,
        on_lost: Callable[[], None],
        *,
        refresh_s: float = leases.REFRESH_S,
    ) -> None:
        self._db = db
        self._call_id = call_id
        self._holder = holder
        # Replaced once the call's state exists (``follow_lease``): from then on a lost
        # lease also marks the call taken over.
        self.on_lost = on_lost
        self._refresh_s = refresh_s
        self._task: asyncio.Task[None] | None = None
        self._failures = 0
        self._closed = False
        self.lost = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        held = False
        while True:
            if not held:
                # Until held (the database may be slow at first), the guardian only waits
                # for the server to notice a death.
                held = bool(await self._write(leases.hold(self._db, self._call_id, self._holder)))
            elif await self._write(leases.refresh(self._db, self._call_id, self._holder)) is False:
                self.lost = True
                logger.warning("another agent holds this call now: leaving it to that one")
                self.on_lost()
                return
            await asyncio.sleep(self._refresh_s)  # a period, not a synchronisation

    async def _write(self, work: Coroutine[Any, Any, T]) -> T | None:
        """The write's result, or None when it failed or was too slow (logged once)."""
        try:
            return await self._db.bounded(work, WRITE_TIMEOUT_S, cancel=True)
        except STORE_ERRORS as e:
            self._failures += 1
            level = logging.WARNING if self._failures == 1 else logging.DEBUG
            logger.log(level, "call lease not written (%s): the call goes on", type(e).__name__)
            return None

    async def close(self) -> None:
        """The call ended here: stop refreshing, and clear the lease if it is still ours.
        Once: the job's shutdown closes it, and so may a job that ends before its call."""
        if self._closed:
            return
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if not self.lost:
            await self._write(leases.release(self._db, self._call_id, self._holder))


LOST = "another agent holds the call"


def hold_call(ctx: JobContext, call_id: str | None, db: Database) -> CallLease | None:
    """The lease this job keeps on its call, started now: as soon as the job is in the room
    with its caller, before the call is prepared, so that a job that dies while it prepares
    is known dead within the guardian's silence. Released when the job ends. None where
    there is no call to hold: console mode, or a caller without a SIP call ID."""
    if ctx.is_fake_job() or not call_id:
        return None
    if not ctx.room.isconnected():
        # Already out of the room (removed as a second agent, say): holding the call now
        # would take it from the agent that has it.
        return None
    lease = CallLease(db, call_id, ctx.room.local_participant.identity, lambda: ctx.shutdown(LOST))
    lease.start()
    # First of the call's shutdown callbacks: released before the record and the database
    # are closed.
    ctx.add_shutdown_callback(lease.close)
    return lease


def follow_lease(ctx: JobContext, state: CallState, lease: CallLease) -> None:
    """The call's state exists: a lease lost before or from now on marks it replaced."""

    def lost() -> None:
        state.replaced = True
        ctx.shutdown(LOST)

    state.replaced = state.replaced or lease.lost
    lease.on_lost = lost


def end_room_with_session(ctx: JobContext, state: CallState) -> None:
    """When the session closes, the call ends with it (the room deleted, every leg with
    it), unless the call was taken over by another agent (``state.replaced``), or this job
    is no longer in the room: then the room is not its to end (it was removed, perhaps
    before it could hear of it, or the room is gone already)."""
    if state.replaced or not ctx.room.isconnected():
        logger.info("session closed; the room is left to whoever has the call")
        return
    ctx.delete_room()
