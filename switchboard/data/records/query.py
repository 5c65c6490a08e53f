"""Reading call records: the latest calls and one call in full.

These are operator tools (the CLI), so database errors propagate to the caller.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select

from switchboard.data.db import Database
from switchboard.data.records.model import (
    STALE_AFTER_S,
    CallRecord,
    CallStatus,
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


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What the console's list may be narrowed to; every value already checked (``web``)."""

    route: str | None = None
    status: CallStatus | None = None
    reason: str | None = None  # the disconnect reason, as stored
    since: float | None = None  # started at or after (Unix seconds)
    until: float | None = None  # started before
    number: str | None = None  # digits the stored (masked) caller number contains
    limit: int = 50


async def find_calls(
    db: Database,
    where: CallFilter,
    *,
    now: float | None = None,
    stale_after_s: float = STALE_AFTER_S,
) -> list[CallSummary]:
    """The latest calls that pass ``where``, newest first; values are bound parameters."""
    at = time.time() if now is None else now
    query = select(*_SUMMARY_COLUMNS)
    if where.route is not None:
        query = query.where(calls.c.route == where.route)
    if where.reason is not None:
        query = query.where(calls.c.disconnect_reason == where.reason)
    if where.since is not None:
        query = query.where(calls.c.started_at >= where.since)
    if where.until is not None:
        query = query.where(calls.c.started_at < where.until)
    if where.number:
        # Stored numbers are masked (+4420••••4567): the visible digits are what matches.
        query = query.where(calls.c.caller_number.contains(where.number, autoescape=True))
    fresh = calls.c.heartbeat_at >= at - stale_after_s
    if where.status == "complete":
        query = query.where(calls.c.status == "complete")
    elif where.status == "in_progress":
        query = query.where(calls.c.status != "complete", fresh)
    elif where.status == "incomplete":
        query = query.where(calls.c.status != "complete", ~fresh)
    query = query.order_by(calls.c.started_at.desc(), calls.c.call_id).limit(where.limit)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [summary_from_row(r._mapping, now=at, stale_after_s=stale_after_s) for r in rows]


async def route_names(db: Database) -> list[str]:
    """The routes calls were recorded under, for the console's filter."""
    query = select(calls.c.route).where(calls.c.route.is_not(None)).distinct()
    async with db.engine.connect() as conn:
        return sorted(r[0] for r in (await conn.execute(query)).all())
