"""Reading call records: the latest calls and one call in full.

These are operator tools (the CLI), so database errors propagate to the caller.
"""

from __future__ import annotations

import time

from sqlalchemy import select

from switchboard.data.db import Database
from switchboard.data.records.model import (
    STALE_AFTER_S,
    CallRecord,
    CallSummary,
    record_from_row,
    summary_from_row,
)
from switchboard.data.schema import calls

_SUMMARY_COLUMNS = [
    c for c in calls.c if c.name not in ("statuses", "transcript", "tool_calls", "usage")
]


async def list_calls(
    db: Database, limit: int = 20, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> list[CallSummary]:
    """The latest calls, newest first. Raises the database's errors (operator tool)."""
    query = select(*_SUMMARY_COLUMNS).order_by(calls.c.started_at.desc(), calls.c.call_id)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).all()
    at = time.time() if now is None else now
    return [summary_from_row(r._mapping, now=at, stale_after_s=stale_after_s) for r in rows]


async def get_call(
    db: Database, call_id: str, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> CallRecord | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(calls).where(calls.c.call_id == call_id))).first()
    at = time.time() if now is None else now
    return (
        None if row is None else record_from_row(row._mapping, now=at, stale_after_s=stale_after_s)
    )


async def recent_calls(
    db: Database, limit: int = 50, *, now: float | None = None, stale_after_s: float = STALE_AFTER_S
) -> list[CallRecord]:
    """The latest calls in full (their transcripts hold the turns' latency), newest first."""
    query = select(calls).order_by(calls.c.started_at.desc(), calls.c.call_id).limit(limit)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    at = time.time() if now is None else now
    return [record_from_row(r._mapping, now=at, stale_after_s=stale_after_s) for r in rows]
