"""Call records: one row per call, written by a ``CallRecorder`` that never blocks a call.

The recorder keeps the record in memory; ``add_*`` append to it, taking the same values
(``Turn``, ``ToolCall``, ``StatusChange``) that the reader returns. The whole record is
written (an upsert of one row) at ``start``, within ``save_after_s`` of each entry added
(so a job that dies mid-call leaves what was said and done for the job that resumes the
call), every ``HEARTBEAT_S`` while the call runs, and at ``finish``. A write waits at
most ``write_timeout_s`` and then goes on in the background; a database error is logged,
never raised. Each write carries a revision, and the upsert skips a row older than the
stored one, so a slow heartbeat write finishing late cannot turn a complete record back
into "in_progress".

Only the masked caller number is stored unless ``store_full_numbers`` is set.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import or_

from switchboard.data.db import Database
from switchboard.data.records.model import (
    HEARTBEAT_S,
    SAVE_AFTER_S,
    CallRecord,
    Recording,
    StatusChange,
    ToolCall,
    Turn,
    redact_number,
)
from switchboard.data.records.query import get_call, list_calls
from switchboard.data.schema import calls
from switchboard.numbers import mask_number

__all__ = ["CallRecorder", "get_call", "json_safe", "list_calls"]

logger = logging.getLogger("switchboard.records")


def json_safe(value: Any) -> Any:
    """A JSON-encodable deep copy (unknown objects become their ``str``)."""
    return json.loads(json.dumps(_thawed(value), default=str))


def _thawed(value: Any) -> Any:
    # What the reader returns is frozen (read-only mappings, tuples): JSON again.
    if isinstance(value, Mapping):
        return {str(k): _thawed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_thawed(v) for v in value]
    return value


def _turn_row(turn: Turn) -> dict[str, Any]:
    row: dict[str, Any] = {"role": turn.role, "text": turn.text, "time": turn.time}
    if turn.latency:
        row["latency"] = dict(turn.latency)
    if turn.interrupted:
        row["interrupted"] = True
    return row


def _recording_row(part: Recording) -> dict[str, Any]:
    return {
        "file": part.file,
        "started_at": part.started_at,
        "ended_at": part.ended_at,
        "error": part.error,
        "consent": part.consent,
        "egress_id": part.egress_id,
    }


class CallRecorder:
    def __init__(
        self,
        db: Database | None,
        *,
        store_full_numbers: bool = False,
        heartbeat_s: float | None = HEARTBEAT_S,
        save_after_s: float | None = SAVE_AFTER_S,
        write_timeout_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._store_full_numbers = store_full_numbers
        self._heartbeat_s = heartbeat_s
        self._save_after_s = save_after_s
        self._saving: asyncio.Task[None] | None = None
        self._write_timeout_s = write_timeout_s
        self._clock = clock
        self._writer = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._call: dict[str, Any] = {}
        self._statuses: list[dict[str, Any]] = []
        self._turns: list[dict[str, Any]] = []
        self._tool_calls: list[dict[str, Any]] = []
        self._providers: dict[str, Any] = {}
        self._usage: dict[str, Any] = {}
        self._recording: list[dict[str, Any]] = []
        self._revision = 0
        self._lock = asyncio.Lock()
        self._heartbeat: asyncio.Task[None] | None = None
        self._failures = 0

    @property
    def call_id(self) -> str | None:
        return self._call.get("call_id")

    async def start(
        self,
        *,
        call_id: str,
        room: str | None = None,
        route: str | None = None,
        caller_number: str | None = None,
        called_number: str | None = None,
        started_at: float | None = None,
        providers: Mapping[str, Any] | None = None,
    ) -> None:
        """The call was answered: create the row (status in_progress)."""
        now = self._clock()
        self._call = {
            "call_id": call_id,
            "room": room if self._store_full_numbers else redact_number(room, caller_number),
            "route": route,
            "caller_number": caller_number
            if self._store_full_numbers
            else mask_number(caller_number),
            "called_number": called_number,
            "started_at": started_at if started_at is not None else now,
            "answered_at": now,
            "ended_at": None,
            "status": "in_progress",
            "disconnect_reason": None,
        }
        self._providers.update(json_safe(dict(providers or {})))
        await self.flush()
        if self._db is not None and self._heartbeat_s:
            self._heartbeat = asyncio.create_task(self._beat(self._heartbeat_s))

    async def resume(
        self,
        record: CallRecord,
        *,
        route: str | None,
        status: StatusChange,
        providers: Mapping[str, Any] | None = None,
    ) -> None:
        """Continue ``record``, a call another job started and lost: its entries are kept
        (before any added here already) and the row is in progress again, with ``status``
        in its timeline. Its values are stored ones (masked): they are kept as they are."""
        s = record.summary
        self._call = {
            "call_id": s.call_id,
            "room": s.room,
            "route": route or s.route,
            "caller_number": s.caller_number,
            "called_number": s.called_number,
            "started_at": s.started_at,
            "answered_at": s.answered_at,
            "ended_at": None,
            "status": "in_progress",
            "disconnect_reason": None,
        }
        self._statuses[:0] = [{"status": c.status, "time": c.time} for c in record.statuses]
        self._statuses.append({"status": status.status, "time": status.time})
        self._turns[:0] = [_turn_row(t) for t in record.transcript]
        self._tool_calls[:0] = [
            {
                "name": c.name,
                "arguments": json_safe(c.arguments),
                "result": json_safe(c.result),
                "time": c.time,
            }
            for c in record.tool_calls
        ]
        self._providers = {**json_safe(record.providers), **self._providers}
        self._providers.update(json_safe(dict(providers or {})))
        self._usage = json_safe(record.usage)
        self._recording[:0] = [_recording_row(p) for p in record.summary.recordings]
        await self.flush()
        if self._db is not None and self._heartbeat_s:
            self._heartbeat = asyncio.create_task(self._beat(self._heartbeat_s))

    def now(self) -> float:
        """The recorder's clock: the time to give the entries added now."""
        return self._clock()

    def add_status(self, change: StatusChange) -> None:
        """A ``sip.callStatus`` transition (or a dialled leg's, named after it)."""
        self._statuses.append({"status": change.status, "time": change.time})
        self._save_soon()

    def add_turn(self, turn: Turn) -> None:
        self._turns.append(_turn_row(turn))
        self._save_soon()

    def add_tool_call(self, call: ToolCall) -> None:
        self._tool_calls.append(
            {
                "name": call.name,
                "arguments": json_safe(dict(call.arguments)),
                "result": json_safe(call.result),
                "time": call.time,
            }
        )
        self._save_soon()

    def add_recording(self, part: Recording) -> None:
        """A stretch of recording started (or could not: ``part.error`` says why)."""
        self._recording.append(_recording_row(part))
        self._save_soon()

    def end_recording(self, ended_at: float) -> None:
        """The latest stretch of recording is closed: its file is whole."""
        if self._recording and self._recording[-1].get("ended_at") is None:
            self._recording[-1]["ended_at"] = ended_at
            self._save_soon()

    def _save_soon(self) -> None:
        """Write within ``save_after_s``: entries added meanwhile share the write."""
        if self._db is None or not self._call or not self._save_after_s or self._saving:
            return
        self._saving = asyncio.create_task(self._save_after(self._save_after_s))

    async def _save_after(self, delay_s: float) -> None:
        # A timer, not synchronisation: gathers a burst of entries into one write.
        await asyncio.sleep(delay_s)
        self._saving = None
        await self.flush()

    def set_provider(self, role: str, name: str) -> None:
        """Which provider served ``role`` ("stt", "llm", "tts", ...)."""
        self._providers[str(role)] = str(name)

    async def finish(
        self, disconnect_reason: str | None, usage: Mapping[str, Any] | None = None
    ) -> None:
        """The call ended: write the complete record."""
        for task in (self._heartbeat, self._saving):
            if task is not None:
                task.cancel()
        self._heartbeat = self._saving = None
        if not self._call:
            logger.warning("call record: finish() without start(); nothing to write")
            return
        self._call.update(
            ended_at=self._clock(), status="complete", disconnect_reason=disconnect_reason
        )
        self._usage = json_safe(dict(usage or {}))
        await self.flush()

    def abandon(self) -> None:
        """Another job took the call over and continues this record: write nothing more."""
        for task in (self._heartbeat, self._saving):
            if task is not None:
                task.cancel()
        self._heartbeat = self._saving = None
        self._call = {}

    async def flush(self) -> bool:
        """Write the record as it is now; True if it was written within the write timeout."""
        if self._db is None or not self._call:
            return False
        self._revision += 1
        row = {
            **self._call,
            "statuses": list(self._statuses),
            "transcript": list(self._turns),
            "tool_calls": list(self._tool_calls),
            "providers": dict(self._providers),
            "usage": dict(self._usage),
            "recording": [dict(p) for p in self._recording],
            "turns": len(self._turns),
            "writer": self._writer,
            "revision": self._revision,
            "heartbeat_at": self._clock(),
        }
        try:
            return await self._db.bounded(
                self._write(self._db, row), self._write_timeout_s, cancel=False
            )
        except TimeoutError:
            logger.warning(
                "call record %s: the database is slow; the write goes on in the background",
                self.call_id,
            )
            return False

    async def _write(self, db: Database, row: dict[str, Any]) -> bool:
        insert = db.upsert_insert()(calls).values(row)
        statement = insert.on_conflict_do_update(
            index_elements=[calls.c.call_id],
            set_={k: insert.excluded[k] for k in row if k != "call_id"},
            # A new writer (the call re-dispatched to another job) takes the row over.
            where=or_(
                calls.c.writer != insert.excluded.writer,
                calls.c.revision < insert.excluded.revision,
            ),
        )
        async with self._lock:  # one write at a time: the revision check does the rest
            try:
                async with db.write() as conn:
                    await conn.execute(statement)
                return True
            except Exception as e:  # never break a call for a record
                self._failures += 1
                level = logging.WARNING if self._failures == 1 else logging.DEBUG
                cause = getattr(e, "orig", None) or e
                logger.log(
                    level,
                    "call record %s not saved: %s: %s (the call goes on)",
                    self.call_id,
                    type(cause).__name__,
                    (str(cause).splitlines() or [""])[0][:200],
                )
                return False

    async def _beat(self, interval_s: float) -> None:
        # Periodic by design (a timer, not synchronisation): proves the worker is alive.
        while True:
            await asyncio.sleep(interval_s)
            await self.flush()
