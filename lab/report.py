"""What happened on a lab call, as ``make demo`` and ``python -m lab call`` print it: what
the phone measured, what the agent's events say, and the call's record."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.phone import CallResult
from switchboard.data.db import open_database
from switchboard.data.records.query import get_call

# The worker writes the record once the call's job has ended, moments after the phone
# heard the hang-up; stopping the lab before that would leave it "in_progress".
RECORD_WAIT_S = 30.0


def events(path: Path, job_id: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if job_id is None or r.get("job_id") == job_id]


def caller_event(path: Path, result: CallResult) -> dict[str, Any] | None:
    """The agent's view of this call, matched by the SIP Call-ID the phone sent."""
    return next(
        (
            e
            for e in events(path)
            if e["event"] == "caller" and e["caller"].get("call_id_full") == result.call_id
        ),
        None,
    )


def report(result: CallResult, call_events: list[dict[str, Any]]) -> str:
    lines = ["", "What happened on the call", "-------------------------"]
    lines.append(f"answered        : {result.answered} (SIP {result.final_status})")
    if result.time_to_answer is not None:
        lines.append(f"INVITE → 200 OK : {result.time_to_answer * 1000:.0f} ms")
    if result.time_to_first_audio is not None:
        lines.append(f"200 OK → voice  : {result.time_to_first_audio * 1000:.0f} ms")
    lines.append(f"audio heard     : {result.received_audio_seconds:.1f} s")
    said: set[str] = set()  # keyless speech is both an "agent_said" and a transcript line
    for event in call_events:
        kind = event["event"]
        if kind == "caller":
            c = event["caller"]
            lines.append(
                f"who called      : {c['phone_number']} → {c['called_number']} "
                f"(call {c['call_id']}, custom {c['custom']})"
            )
        elif kind == "route":
            lines.append(f"route           : {event.get('route')} ({event.get('reason')})")
        elif kind == "providers":
            lines.append(
                f"providers       : stt={event['stt']} llm={event['llm']} tts={event['tts']}"
            )
        elif kind in ("agent_said", "transcript") and event.get("text") not in said:
            said.add(str(event.get("text")))
            who = "caller said     " if event.get("role") == "user" else "agent said      "
            lines.append(f"{who}: {event.get('text')!r}")
        elif kind in ("caller_left", "agent_hangup"):
            who = "the caller hung up" if kind == "caller_left" else "the agent hung up"
            lines.append(f"how it ended    : {who} ({event['reason']})")
    return "\n".join(lines)


@dataclass(frozen=True)
class RecordSeen:
    call_id: str
    status: str | None  # None: no record within the wait


async def wait_for_record(database_url: str, call_id: str, timeout: float) -> RecordSeen:
    """The record's status once it is no longer in progress, or the last seen at the
    deadline."""
    db = await open_database(database_url)
    status: str | None = None
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            record = await get_call(db, call_id)
            status = record.summary.status if record is not None else None
            if status is not None and status != "in_progress":
                break
            await asyncio.sleep(0.2)  # polling the database under a deadline
    finally:
        await db.close()
    return RecordSeen(call_id, status)


def record_line(seen: RecordSeen) -> str:
    if seen.status is None:
        return f"record          : none for call {seen.call_id} (yet)"
    return (
        f"record          : {seen.status} (switchboard calls show {seen.call_id}, "
        "with the lab's DATABASE_URL)"
    )
