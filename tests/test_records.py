"""Call records on SQLite and PostgreSQL: a call's lifecycle, masked numbers, records left
behind by a crashed worker, late writes, and a database that is down."""

from __future__ import annotations

import asyncio
import time
from itertools import count

import pytest
from sqlalchemy import select

from switchboard.data.db import Database
from switchboard.data.records.model import (
    STALE_AFTER_S,
    StatusChange,
    ToolCall,
    Turn,
    effective_status,
    redact_number,
    timeline,
)
from switchboard.data.records.recorder import CallRecorder, get_call, list_calls
from switchboard.data.schema import calls

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

CALLER = "+442071234567"


async def record_call(
    db: Database, call_id: str = "SCL_1", *, full_numbers: bool = False
) -> CallRecorder:
    ticks = (1_700_000_000.0 + i for i in count())  # one second per event: a clear order
    recorder = CallRecorder(
        db, heartbeat_s=None, clock=lambda: next(ticks), store_full_numbers=full_numbers
    )
    recorder.add_status(StatusChange("ringing", recorder.now()))
    await recorder.start(
        call_id=call_id,
        room=f"call-_{CALLER}_abc",
        route="support",
        caller_number=CALLER,
        called_number="+15105550100",
        providers={"stt": "deepgram/nova-3"},
    )
    recorder.add_status(StatusChange("active", recorder.now()))
    recorder.add_turn(Turn("assistant", "Hello, how can I help?", recorder.now()))
    recorder.add_turn(Turn("user", "Where is my order?", recorder.now()))
    recorder.add_tool_call(
        ToolCall("lookup_order", {"order_id": "42"}, {"status": "shipped"}, recorder.now())
    )
    recorder.add_turn(Turn("assistant", "It has shipped.", recorder.now()))
    recorder.set_provider("llm", "openai/gpt-4.1-mini")
    recorder.add_status(StatusChange("hangup", recorder.now()))
    await recorder.finish("CLIENT_INITIATED", usage={"llm_prompt_tokens": 120})
    return recorder


async def test_lifecycle_complete(db: Database) -> None:
    await record_call(db)
    record = await get_call(db, "SCL_1")
    assert record is not None
    c = record.summary
    assert (c.status, c.route, c.disconnect_reason, c.turns) == (
        "complete", "support", "CLIENT_INITIATED", 3
    )  # fmt: skip
    assert c.called_number == "+15105550100"
    assert c.started_at <= c.answered_at <= c.ended_at  # type: ignore[operator]
    assert [s.status for s in record.statuses] == ["ringing", "active", "hangup"]
    assert [t.role for t in record.transcript] == ["assistant", "user", "assistant"]
    assert record.tool_calls[0].name == "lookup_order"
    assert dict(record.tool_calls[0].arguments) == {"order_id": "42"}
    assert dict(record.providers) == {"stt": "deepgram/nova-3", "llm": "openai/gpt-4.1-mini"}
    assert dict(record.usage) == {"llm_prompt_tokens": 120}
    kinds = [e.kind for e in timeline(record)]
    assert kinds == ["status", "status", "turn", "turn", "tool", "turn", "status"]
    [summary] = await list_calls(db)
    assert summary == c


async def test_only_the_masked_number_is_stored(db: Database) -> None:
    await record_call(db, "masked")
    await record_call(db, "full", full_numbers=True)
    async with db.engine.connect() as conn:
        rows = dict((await conn.execute(select(calls.c.call_id, calls.c.caller_number))).all())
        room = await conn.scalar(select(calls.c.room).where(calls.c.call_id == "masked"))
    assert rows == {"masked": "+4420••••4567", "full": CALLER}
    assert CALLER not in (room or "") and "+4420••••4567" in (room or "")


async def test_in_progress_left_behind_is_incomplete(db: Database) -> None:
    crashed = CallRecorder(db, heartbeat_s=None)
    await crashed.start(call_id="SCL_crashed", caller_number=CALLER)
    crashed.add_turn(Turn("user", "hello?", crashed.now()))
    await crashed.flush()  # the worker dies here: finish() never runs
    await record_call(db, "SCL_done")
    now = time.time()
    assert {c.call_id: c.status for c in await list_calls(db, now=now)}["SCL_crashed"] == (
        "in_progress"
    )
    later = now + STALE_AFTER_S + 1
    statuses = {c.call_id: c.status for c in await list_calls(db, now=later)}
    assert statuses == {"SCL_crashed": "incomplete", "SCL_done": "complete"}
    record = await get_call(db, "SCL_crashed", now=later)
    assert record is not None and record.summary.status == "incomplete"
    assert [t.text for t in record.transcript] == ["hello?"]


async def test_heartbeat_keeps_a_live_call_in_progress(db: Database) -> None:
    recorder = CallRecorder(db, heartbeat_s=0.01)
    await recorder.start(call_id="SCL_live")
    first = await get_call(db, "SCL_live")
    assert first is not None and first.heartbeat_at is not None
    deadline = time.monotonic() + 10
    while True:  # wait (under a deadline) for the periodic write to land
        record = await get_call(db, "SCL_live")
        if record and record.heartbeat_at and record.heartbeat_at > first.heartbeat_at:
            break
        assert time.monotonic() < deadline, "no heartbeat write within 10 s"
        await asyncio.sleep(0.01)
    await recorder.finish("done")
    record = await get_call(db, "SCL_live")
    assert record is not None and record.summary.status == "complete"


async def test_a_late_older_write_does_not_undo_finish(db: Database) -> None:
    recorder = CallRecorder(db, heartbeat_s=None)
    await recorder.start(call_id="SCL_race")
    stale = {**recorder._call, "status": "in_progress"}  # what a slow heartbeat carried
    await recorder.finish("done")
    row = {
        **stale,
        **{k: [] for k in ("statuses", "transcript", "tool_calls")},
        "providers": {},
        "usage": {},
        "turns": 0,
        "writer": recorder._writer,
        "revision": 1,
        "heartbeat_at": time.time(),
    }
    assert await recorder._write(db, row)
    record = await get_call(db, "SCL_race")
    assert record is not None and record.summary.status == "complete"


async def test_database_down_never_breaks_the_call(
    down_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = CallRecorder(down_db, write_timeout_s=0.5)
    started = time.monotonic()
    await recorder.start(call_id="SCL_down", caller_number=CALLER)
    recorder.add_turn(Turn("user", "hi", recorder.now()))
    await recorder.finish("done")
    assert time.monotonic() - started < 2 * 0.5 + 0.5
    assert "not saved" in caplog.text or "slow" in caplog.text
    assert CALLER not in caplog.text


def test_effective_status() -> None:
    assert effective_status("complete", None, now=10**9) == "complete"
    assert effective_status("in_progress", 100.0, now=100.0 + STALE_AFTER_S) == "in_progress"
    assert effective_status("in_progress", 100.0, now=101.0 + STALE_AFTER_S) == "incomplete"
    assert effective_status("in_progress", None, now=0.0) == "incomplete"


def test_redact_number() -> None:
    assert redact_number("call-_+14155552671_x", "+14155552671") == "call-_+1415••••2671_x"
    assert redact_number("call-14155552671", "+14155552671") == "call-+1415••••2671"
    assert redact_number("room", None) == "room"
