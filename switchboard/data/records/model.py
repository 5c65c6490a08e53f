"""Call records as values, and the pure rules that read them (status, timeline).

A record left "in_progress" by a worker that crashed would look alive forever. The
recorder refreshes ``heartbeat_at`` every ``HEARTBEAT_S`` while the call runs, so a record
not complete whose heartbeat is older than ``STALE_AFTER_S`` (several missed beats) is
reported as "incomplete". This works across workers and hosts, unlike "not ours", and
needs no cleanup job: the stored row is left as it is, only its reading changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from switchboard.data.directory.entry import freeze_json
from switchboard.numbers import mask_number

CallStatus = Literal["in_progress", "complete", "incomplete"]

HEARTBEAT_S = 30.0
SAVE_AFTER_S = 1.0  # an entry added is written within this (``CallRecorder``)
STALE_AFTER_S = 4 * HEARTBEAT_S


def redact_number(text: str | None, number: str | None) -> str | None:
    """``text`` with ``number`` replaced by its masked form. Room names of dispatch rules
    embed the caller's number (``call-_+14155552671_x``): masking only the number column
    would leave it readable there."""
    if not text or not number:
        return text
    masked = mask_number(number) or ""
    digits = number.lstrip("+")
    redacted = text.replace(number, masked)
    return redacted.replace(digits, masked) if len(digits) >= 7 else redacted


def effective_status(
    stored: str, heartbeat_at: float | None, *, now: float, stale_after_s: float = STALE_AFTER_S
) -> CallStatus:
    if stored == "complete":
        return "complete"
    if heartbeat_at is None or now - heartbeat_at > stale_after_s:
        return "incomplete"
    return "in_progress"


@dataclass(frozen=True, slots=True)
class StatusChange:
    status: str  # a sip.callStatus value: active, hangup, ...
    time: float


# What a turn's time went on, in milliseconds, as the framework measured it: on the
# caller's turn, the end-of-turn decision after their last sound and the transcript's
# delay; on the agent's reply, the LLM's first token, the voice's first audio and the
# whole of it, from the caller's last sound to the agent's first audio.
TURN_FIGURES = ("end_of_turn_ms", "transcription_ms", "llm_ttft_ms", "tts_ttfb_ms", "e2e_ms")
_NO_FIGURES: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Turn:
    role: str  # "user" or "assistant" (the framework's names)
    text: str
    time: float
    latency: Mapping[str, float] = field(default_factory=lambda: _NO_FIGURES)  # TURN_FIGURES
    interrupted: bool = False  # the caller spoke over this reply and it was cut off


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: Mapping[str, Any]
    result: Any
    time: float


@dataclass(frozen=True, slots=True)
class Recording:
    """One stretch of the call's recording (a resumed call has one per job): its file in
    the recordings folder, or why there is none (``error``: the call went on without)."""

    file: str | None
    started_at: float
    ended_at: float | None = None
    error: str | None = None
    consent: bool = False  # the route's consent line was heard before it started
    egress_id: str | None = None  # recorded by LiveKit Egress instead (its storage has it)


def recordings_from(value: Any) -> tuple[Recording, ...]:
    """The stored parts (None on rows written before recordings existed)."""
    if not isinstance(value, list | tuple):
        return ()
    return tuple(
        Recording(
            file=p.get("file"),
            started_at=p.get("started_at", 0.0),
            ended_at=p.get("ended_at"),
            error=p.get("error"),
            consent=bool(p.get("consent", False)),
            egress_id=p.get("egress_id"),
        )
        for p in value
        if isinstance(p, Mapping)
    )


@dataclass(frozen=True, slots=True)
class CallSummary:
    call_id: str
    room: str | None
    route: str | None
    caller_number: str | None  # masked unless stored in full
    called_number: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    status: CallStatus
    disconnect_reason: str | None
    turns: int
    recordings: tuple[Recording, ...] = ()

    @property
    def duration_s(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class CallRecord:
    summary: CallSummary
    statuses: tuple[StatusChange, ...]
    transcript: tuple[Turn, ...]
    tool_calls: tuple[ToolCall, ...]
    providers: Mapping[str, Any]
    usage: Mapping[str, Any]
    heartbeat_at: float | None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    time: float
    kind: Literal["status", "turn", "tool"]
    event: StatusChange | Turn | ToolCall


def timeline(record: CallRecord) -> list[TimelineEvent]:
    """Status changes, turns and tool calls in time order (ties keep that order)."""
    events = [TimelineEvent(s.time, "status", s) for s in record.statuses]
    events += [TimelineEvent(t.time, "turn", t) for t in record.transcript]
    events += [TimelineEvent(c.time, "tool", c) for c in record.tool_calls]
    return sorted(events, key=lambda e: e.time)


def summary_from_row(
    row: Mapping[Any, Any], *, now: float, stale_after_s: float = STALE_AFTER_S
) -> CallSummary:
    return CallSummary(
        call_id=row["call_id"],
        room=row["room"],
        route=row["route"],
        caller_number=row["caller_number"],
        called_number=row["called_number"],
        started_at=row["started_at"],
        answered_at=row["answered_at"],
        ended_at=row["ended_at"],
        status=effective_status(
            row["status"], row["heartbeat_at"], now=now, stale_after_s=stale_after_s
        ),
        disconnect_reason=row["disconnect_reason"],
        turns=row["turns"],
        recordings=recordings_from(row.get("recording")),
    )


def _turn(t: Mapping[str, Any]) -> Turn:
    # Records written before latency was kept have neither key.
    figures = t.get("latency") or {}
    latency = {k: float(v) for k, v in figures.items() if k in TURN_FIGURES}
    return Turn(
        t["role"], t["text"], t["time"], MappingProxyType(latency), bool(t.get("interrupted"))
    )


def record_from_row(
    row: Mapping[Any, Any], *, now: float, stale_after_s: float = STALE_AFTER_S
) -> CallRecord:
    return CallRecord(
        summary=summary_from_row(row, now=now, stale_after_s=stale_after_s),
        statuses=tuple(StatusChange(s["status"], s["time"]) for s in row["statuses"]),
        transcript=tuple(_turn(t) for t in row["transcript"]),
        tool_calls=tuple(
            ToolCall(c["name"], freeze_json(c["arguments"]), freeze_json(c["result"]), c["time"])
            for c in row["tool_calls"]
        ),
        providers=freeze_json(row["providers"]),
        usage=freeze_json(row["usage"]),
        heartbeat_at=row["heartbeat_at"],
    )
