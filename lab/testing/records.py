"""Reading the lab's call records from tests: the database the lab's workers write to."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lab.testing.handles import LabHandle
from switchboard.data.db import Database, open_database
from switchboard.data.records.model import CallRecord
from switchboard.data.records.query import get_call


@asynccontextmanager
async def lab_database(lab: LabHandle) -> AsyncIterator[Database]:
    database = await open_database(lab.env["LAB_DATABASE_URL"])
    try:
        yield database
    finally:
        await database.close()


async def wait_record(db: Database, call_id: str, status: str, timeout: float = 10) -> CallRecord:
    """The record of ``call_id`` once its status is ``status``; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    record = None
    while time.monotonic() < deadline:
        record = await get_call(db, call_id)
        if record is not None and record.summary.status == status:
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"record {call_id} not {status} within {timeout}s: {record}")
