"""Call leases: which agent holds a call, and how long since it last said it was alive.

livekit-server v1.13.5 notices an agent whose process died only when its connection times
out (about 20 s: ICE disconnected, then failed), and nothing in its API shows the death
sooner. So the agent's job says "still here" itself, about every second, and the guardian
reads how long each call's holder has been silent (``switchboard/guardian/liveness.py``).

Why the call records' database and not another store: every deployment with more than
one worker already shares it (a resumed call is continued from its record, which another
worker wrote), the guardian can reach it the same way (``DATABASE_URL``), and it is ours;
Redis is there too (livekit-sip needs it) but it is LiveKit's, and LiveKit Cloud users
have none. A lease is one tiny row per call, written once a second: far below what either
backend takes.

Times come from the database's own clock, in the statement itself (``db_clock``): the
holder writes "alive now" and the guardian reads "silent for", both on one clock, so
neither the workers' nor the guardian's clock needs to agree with anyone's. (A SQLite file
is on one machine, so its clock is that machine's.)

The owner check: a holder refreshes only its own lease (``refresh`` returns False once
another agent took the call over), and releases only its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Float, delete, literal_column, or_, select, update

from switchboard.data.db import Database
from switchboard.data.schema import call_leases

# How often a holder says it is alive; the guardian's silence threshold is a few of these.
REFRESH_S = 1.0
# A lease is taken from another holder only once that one has been silent this long: an
# agent that joins a call whose agent is alive (a second agent, soon removed) must not take
# the call from it.
TAKEOVER_S = 2 * REFRESH_S


@dataclass(frozen=True, slots=True)
class Lease:
    call_id: str
    holder: str  # the agent participant's identity
    silent_s: float  # since the holder last refreshed it, on the database's clock


def db_clock(db: Database) -> ColumnElement[float]:
    """Now, in Unix seconds, as the database computes it within the statement."""
    if db.backend == "postgresql":
        # clock_timestamp(), not now(): now() is the transaction's start.
        return literal_column("extract(epoch from clock_timestamp())", Float)
    # julianday('now') is the statement's time, to the millisecond.
    return literal_column("((julianday('now') - 2440587.5) * 86400.0)", Float)


async def hold(db: Database, call_id: str, holder: str) -> bool:
    """``holder`` takes the call: a new lease, or the lease of an agent silent for
    ``TAKEOVER_S`` (the one it replaces). False: another holder is alive (try again)."""
    now = db_clock(db)
    insert = db.upsert_insert()(call_leases).values(call_id=call_id, holder=holder, alive_at=now)
    statement = insert.on_conflict_do_update(
        index_elements=[call_leases.c.call_id],
        set_={"holder": insert.excluded.holder, "alive_at": now},
        where=or_(
            call_leases.c.holder == insert.excluded.holder,
            now - call_leases.c.alive_at >= TAKEOVER_S,
        ),
    )
    async with db.write() as conn:
        result = await conn.execute(statement)
    return bool(result.rowcount == 1)


async def refresh(db: Database, call_id: str, holder: str) -> bool:
    """Say ``holder`` is alive; False when the lease is no longer its own (the call was
    taken over by another agent, or the lease was purged)."""
    statement = (
        update(call_leases)
        .where(call_leases.c.call_id == call_id, call_leases.c.holder == holder)
        .values(alive_at=db_clock(db))
    )
    async with db.write() as conn:
        result = await conn.execute(statement)
    return bool(result.rowcount == 1)


async def release(db: Database, call_id: str, holder: str) -> None:
    """The call ended with ``holder``: its lease goes (another holder's is left alone)."""
    statement = delete(call_leases).where(
        call_leases.c.call_id == call_id, call_leases.c.holder == holder
    )
    async with db.write() as conn:
        await conn.execute(statement)


async def read_leases(db: Database, call_id: str | None = None) -> list[Lease]:
    """Every lease (or ``call_id``'s), with how long its holder has been silent."""
    silent = (db_clock(db) - call_leases.c.alive_at).label("silent_s")
    statement = select(call_leases.c.call_id, call_leases.c.holder, silent)
    if call_id is not None:
        statement = statement.where(call_leases.c.call_id == call_id)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(statement)).all()
    return [Lease(r.call_id, r.holder, float(r.silent_s)) for r in rows]


async def purge(db: Database, silent_for_s: float) -> int:
    """Forget leases silent for longer than ``silent_for_s`` (their job died and no other
    took the call: the call is long over). Returns how many."""
    statement = delete(call_leases).where(db_clock(db) - call_leases.c.alive_at > silent_for_s)
    async with db.write() as conn:
        result = await conn.execute(statement)
    return int(result.rowcount or 0)
