"""The per-caller dial history, shared by every job process through the database.

`policy.decide` is pure and takes the history as data; this module reads and writes it.
A database that is slow or down must not leave a caller stuck, nor open the gate wide:
we fall back to this process's own memory (which still enforces the per-call limit).
"""

from __future__ import annotations

import hashlib
import logging

from sqlalchemy import delete, insert, select

from switchboard.data.db import Database
from switchboard.data.schema import dials
from switchboard.dialing.policy import HOUR, DialHistory, PriorDials, caller_key

logger = logging.getLogger("switchboard.policy")

BUDGET_S = 0.3


def hashed_key(caller_number: str | None) -> str:
    # Numbers are few enough to brute-force a plain hash; this only keeps them out of
    # casual view in the table, as the records do with masking.
    return hashlib.sha256(f"switchboard-dials:{caller_key(caller_number)}".encode()).hexdigest()


class SharedDialHistory:
    def __init__(self, db: Database, local: DialHistory) -> None:
        self._db = db
        self._local = local

    async def view(self, caller: str | None, call_id: str, now: float) -> PriorDials:
        local = self._local.view(caller, call_id, now)
        try:
            times = await self._db.bounded(self._times(caller, now), BUDGET_S, cancel=True)
        except Exception as e:
            logger.warning("dial history unavailable (%s); using this process's", type(e).__name__)
            return local
        # The shared log knows other calls; this process knows this call for certain.
        return PriorDials(tuple(sorted({*times, *local.caller_times})), local.call_count)

    async def record(self, caller: str | None, call_id: str, now: float) -> None:
        self._local.record(caller, call_id, now)
        try:
            await self._db.bounded(self._insert(caller, call_id, now), BUDGET_S, cancel=False)
        except Exception as e:
            logger.warning("could not log the dial (%s)", type(e).__name__)

    async def _times(self, caller: str | None, now: float) -> list[float]:
        query = select(dials.c.at).where(
            dials.c.caller_key == hashed_key(caller), dials.c.at > now - HOUR
        )
        async with self._db.engine.connect() as conn:
            return [row.at for row in await conn.execute(query)]

    async def _insert(self, caller: str | None, call_id: str, now: float) -> None:
        async with self._db.write() as conn:
            await conn.execute(delete(dials).where(dials.c.at < now - 24 * HOUR))
            await conn.execute(
                insert(dials).values(caller_key=hashed_key(caller), call_id=call_id, at=now)
            )
