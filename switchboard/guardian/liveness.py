"""The guardian's reading of the call leases (``data/leases.py``): an agent whose job died
is known to be dead seconds after, not when livekit-server drops it (about 20 s).

Every ``POLL_S`` the guardian reads every lease (one query) and looks at once at the room
of a call whose holder just turned silent (``on_silent``). When it looks at a room it
reads that call's lease again (``lease_of``): the decision (``decisions.silent_agent``)
is taken on that fresh read, and only against the lease's own holder.

A false "dead" costs a caller an interruption (the slow agent is removed and a new one
continues the call with an apology; never two agents at once), so silence is counted only
while the store itself answers well: the guardian refreshes a lease of its own on every
poll, through the same database and its locks. While that write fails or is slow (a
database restarting, a SQLite file locked by a long write), the workers' writes may be
stuck too: silence counts again only from the first good poll after it, so nobody is
judged dead for the store's trouble. (Also at start: a restarted guardian waits a whole
silence period before judging.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace

from sqlalchemy.exc import SQLAlchemyError

from switchboard.data import leases
from switchboard.data.db import Database
from switchboard.data.leases import Lease

logger = logging.getLogger("switchboard.guardian")

POLL_S = 0.5
# The guardian's own write taking longer than this means the store is in trouble.
SLOW_WRITE_S = 1.0
# A lease silent this long belongs to a job that died with no agent after it: forgotten.
PURGE_AFTER_S = 3600.0
PURGE_EVERY_S = 60.0
# The guardian's own lease is named so; never a SIP call ID (those have no colon).
OWN_PREFIX = "guardian:"
STORE_ERRORS = (SQLAlchemyError, OSError, TimeoutError)


def trusted(lease: Lease, readable_for_s: float) -> Lease:
    """The lease with its silence counted only over the time the store has answered well."""
    return replace(lease, silent_s=min(lease.silent_s, readable_for_s))


class LeaseWatch:
    def __init__(
        self,
        db: Database,
        silence_s: float,
        on_silent: Callable[[str], None],
        *,
        poll_s: float = POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._silence_s = silence_s
        self._on_silent = on_silent
        self._poll_s = poll_s
        self._clock = clock
        self._own = f"{OWN_PREFIX}{uuid.uuid4().hex[:12]}"
        self._good_since: float | None = None  # this guardian's clock
        self._told: dict[str, str] = {}  # call ID -> the silent holder already reported
        self._failing = False

    @property
    def display_url(self) -> str:
        return self._db.display_url

    def readable_for(self) -> float:
        """Seconds since the store began answering well (0: it does not)."""
        return 0.0 if self._good_since is None else self._clock() - self._good_since

    async def run(self) -> None:
        """Poll until cancelled."""
        purged_at = self._clock()
        while True:
            await self.poll()
            if self._clock() - purged_at >= PURGE_EVERY_S:
                purged_at = self._clock()
                with contextlib.suppress(*STORE_ERRORS):
                    await leases.purge(self._db, PURGE_AFTER_S)
            await asyncio.sleep(self._poll_s)

    async def poll(self) -> None:
        began = self._clock()
        try:
            await leases.hold(self._db, self._own, self._own)  # always its own
            wrote = self._clock()
            found = await leases.read_leases(self._db)
        except STORE_ERRORS as e:
            self._good_since = None
            if not self._failing:
                self._failing = True
                logger.warning(
                    "call leases unreadable (%s): dead agents are known only when the "
                    "server drops them; do the workers use the same DATABASE_URL?",
                    type(e).__name__,
                )
            return
        if self._failing:
            self._failing = False
            logger.info("call leases readable again")
        if wrote - began > SLOW_WRITE_S:
            self._good_since = None
        if self._good_since is None:
            self._good_since = wrote
        for lease in found:
            if lease.call_id.startswith(OWN_PREFIX):
                continue
            lease = trusted(lease, self.readable_for())
            if lease.silent_s < self._silence_s:
                self._told.pop(lease.call_id, None)
            elif self._told.get(lease.call_id) != lease.holder:
                self._told[lease.call_id] = lease.holder
                self._on_silent(lease.call_id)
        for gone in self._told.keys() - {lease.call_id for lease in found}:
            del self._told[gone]

    async def lease_of(self, call_id: str) -> Lease | None:
        """``call_id``'s lease, read now, its silence counted as in ``trusted``; None when
        it has none or the store does not answer."""
        if self._good_since is None:
            return None
        try:
            found = await leases.read_leases(self._db, call_id)
        except STORE_ERRORS:
            return None
        return trusted(found[0], self.readable_for()) if found else None

    async def aclose(self) -> None:
        with contextlib.suppress(*STORE_ERRORS):
            await leases.release(self._db, self._own, self._own)
        await self._db.close()
