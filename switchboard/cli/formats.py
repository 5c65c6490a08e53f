"""Text and JSON for the `directory`, `calls` and `stats` commands. Pure functions of the values.

Names, notes and transcripts are untrusted text: ``printable`` escapes control characters
so a crafted value cannot drive the operator's terminal (escape sequences).
Numbers are masked unless the operator asked for them (``unmasked``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from switchboard.data.directory.entry import thaw_json
from switchboard.data.directory.store import DirectoryResult, ImportReport
from switchboard.data.records.latency import FigureStats
from switchboard.data.records.model import (
    CallRecord,
    CallSummary,
    StatusChange,
    TimelineEvent,
    Turn,
    timeline,
)
from switchboard.numbers import mask_number

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ROLES = {"user": "caller", "assistant": "agent"}
_MAX_PROBLEMS = 50


def printable(value: object) -> str:
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", str(value))


def number(value: str | None, unmasked: bool) -> str:
    return (value if unmasked else mask_number(value)) or "-"


def when(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).isoformat()


def import_report(report: ImportReport) -> str:
    verb = "refused" if report.refused else "imported"
    lines = [
        f"{verb} {printable(report.path)}: {report.rows} rows read, {report.written} written "
        f"({report.inserted} new, {report.updated} updated) in {report.elapsed_s:.2f} s"
    ]
    if report.problems:
        what = "nothing written" if report.refused else "skipped"
        lines.append(f"{len(report.problems)} bad row(s), {what}:")
        lines += [
            f"  line {p.line}: {printable(p.reason)}" for p in report.problems[:_MAX_PROBLEMS]
        ]
        if len(report.problems) > _MAX_PROBLEMS:
            lines.append(f"  ... and {len(report.problems) - _MAX_PROBLEMS} more")
        if report.refused:
            lines.append("fix them, or pass --on-error skip to import the good rows")
    if report.duplicates:
        lines.append(f"{len(report.duplicates)} number(s) repeated, the last row wins:")
        lines += [
            f"  {mask_number(d.number)} on lines {', '.join(map(str, d.lines))}"
            for d in report.duplicates[:_MAX_PROBLEMS]
        ]
    return "\n".join(lines)


def directory_result(result: DirectoryResult, *, query: str, unmasked: bool) -> str:
    shown = printable(number(result.number or query, unmasked))
    if result.entry is None:
        detail = f": {result.reason}" if result.reason else ""
        return f"{shown}: {result.status}{detail}"
    entry = result.entry
    rows = [
        ("number", shown),
        ("name", entry.name),
        ("account_id", entry.account_id),
        ("tier", entry.tier),
        ("language", entry.language),
        ("notes", entry.notes),
        *((f"extra.{k}", json.dumps(thaw_json(v))) for k, v in entry.extra.items()),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k.ljust(width)}  {printable(v or '-')}" for k, v in rows)


def calls_table(calls: Sequence[CallSummary], *, unmasked: bool) -> str:
    if not calls:
        return "no calls recorded yet"
    header = ("STARTED", "CALL ID", "ROUTE", "CALLER", "STATUS", "DURATION", "TURNS", "ENDED BY")
    rows = [
        (
            when(c.started_at),
            c.call_id,
            c.route or "-",
            number(c.caller_number, unmasked),
            c.status,
            "-" if c.duration_s is None else f"{c.duration_s:.1f} s",
            str(c.turns),
            c.disconnect_reason or "-",
        )
        for c in calls
    ]
    cells = [header, *[tuple(printable(v) for v in row) for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def summary_json(c: CallSummary, *, unmasked: bool) -> dict[str, Any]:
    return {
        "call_id": c.call_id,
        "room": c.room,
        "route": c.route,
        "caller_number": c.caller_number if unmasked else mask_number(c.caller_number),
        "called_number": c.called_number,
        "started_at": iso(c.started_at),
        "answered_at": iso(c.answered_at),
        "ended_at": iso(c.ended_at),
        "duration_s": c.duration_s,
        "status": c.status,
        "disconnect_reason": c.disconnect_reason,
        "turns": c.turns,
    }


def record_json(record: CallRecord, *, unmasked: bool) -> dict[str, Any]:
    return {
        **summary_json(record.summary, unmasked=unmasked),
        "providers": thaw_json(record.providers),
        "usage": thaw_json(record.usage),
        "timeline": [_event_json(e) for e in timeline(record)],
    }


def _event_json(event: TimelineEvent) -> dict[str, Any]:
    fields = {k: thaw_json(getattr(event.event, k)) for k in event.event.__slots__}
    return {"kind": event.kind, **fields, "time": iso(event.time)}


def call_details(record: CallRecord, *, unmasked: bool) -> str:
    c = record.summary
    head = [
        f"call {printable(c.call_id)}  {c.status}",
        f"  room      {printable(c.room or '-')}",
        f"  route     {printable(c.route or '-')}",
        f"  caller    {number(c.caller_number, unmasked)}",
        f"  called    {printable(c.called_number or '-')}",
        f"  started   {when(c.started_at)}",
        f"  answered  {when(c.answered_at)}",
        f"  ended     {when(c.ended_at)}  ({printable(c.disconnect_reason or '-')})",
        f"  providers {_pairs(record.providers)}",
        f"  usage     {_pairs(record.usage)}",
        "",
        "timeline",
    ]
    events = [f"  {_offset(e.time - c.started_at)}  {_describe(e)}" for e in timeline(record)]
    transcript = [
        f"  {_ROLES.get(t.role, printable(t.role))}: {printable(t.text)}"
        + ("  [interrupted]" if t.interrupted else "")
        for t in record.transcript
    ]
    return "\n".join(
        [*head, *(events or ["  (nothing)"]), "", "transcript", *(transcript or ["  (none)"])]
    )


def _offset(seconds: float) -> str:
    return f"{seconds:+8.1f} s"


def _describe(event: TimelineEvent) -> str:
    e = event.event
    if isinstance(e, StatusChange):
        return f"status  {printable(e.status)}"
    if isinstance(e, Turn):
        cut = "  [interrupted]" if e.interrupted else ""
        said = f"{_ROLES.get(e.role, printable(e.role)):<7} {printable(e.text)}{cut}"
        return f"{said}\n{'':14}{latency(e.latency)}" if e.latency else said
    arguments = json.dumps(thaw_json(e.arguments), ensure_ascii=False)
    result = json.dumps(thaw_json(e.result), ensure_ascii=False)
    return f"tool    {printable(e.name)}({printable(arguments)}) -> {printable(result)}"


def _pairs(values: Any) -> str:
    if not values:
        return "-"
    shown = (
        f"{k}={v if isinstance(v, str) else json.dumps(thaw_json(v))}" for k, v in values.items()
    )
    return printable(", ".join(shown))


# How `calls show` and `stats` name the figures (records.model.TURN_FIGURES).
_FIGURE_NAMES = {
    "end_of_turn_ms": "end of turn",
    "transcription_ms": "stt",
    "llm_ttft_ms": "llm first token",
    "tts_ttfb_ms": "tts first audio",
    "e2e_ms": "end to end",
}


def latency(figures: Mapping[str, float]) -> str:
    """One turn's figures: ``end of turn 310 ms · stt 42 ms``."""
    return "  ·  ".join(
        f"{_FIGURE_NAMES[k]} {figures[k]:.0f} ms" for k in _FIGURE_NAMES if k in figures
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def stats_table(calls: int, stats: Sequence[FigureStats], interrupted: int) -> str:
    if not calls:
        return "no calls recorded yet"
    rows = [f"turn latency over the last {calls} call(s)", ""]
    rows.append(f"  {'':18}{'turns':>6}{'p50':>10}{'p95':>10}{'max':>10}")
    for s in stats:
        rows.append(
            f"  {_FIGURE_NAMES[s.figure]:18}{s.n:>6}{_ms(s.p50_ms):>10}{_ms(s.p95_ms):>10}"
            f"{_ms(s.max_ms):>10}"
        )
    rows += ["", f"  replies interrupted by the caller: {interrupted}"]
    return "\n".join(rows)


def stats_json(calls: int, stats: Sequence[FigureStats], interrupted: int) -> dict[str, Any]:
    return {
        "calls": calls,
        "figures": {
            s.figure: {"n": s.n, "p50_ms": s.p50_ms, "p95_ms": s.p95_ms, "max_ms": s.max_ms}
            for s in stats
        },
        "interrupted_replies": interrupted,
    }
