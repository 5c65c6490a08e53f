"""Text and JSON for the `directory`, `calls` and `stats` commands. Pure functions of the values.

Names, notes, CSV header names and transcripts are untrusted text: ``printable`` escapes
control characters and bidi overrides, so a crafted value cannot drive the operator's
terminal (escape sequences) or make a line read otherwise than it is.
Numbers are masked unless the operator asked for them (``unmasked``).
"""

from __future__ import annotations

import ast
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
from switchboard.dialing.reason_words import refusal_words
from switchboard.numbers import mask_number, mask_numbers_in
from switchboard.safe_text import printable

_ROLES = {"user": "caller", "assistant": "agent"}
_MAX_PROBLEMS = 50


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
            f"  {printable(mask_number(d.number))} on lines {', '.join(map(str, d.lines))}"
            for d in report.duplicates[:_MAX_PROBLEMS]
        ]
    return "\n".join(lines)


def directory_result(result: DirectoryResult, *, query: str, unmasked: bool) -> str:
    if result.status == "invalid":
        # The operator's own typing, on their own terminal: shown as typed, not masked.
        return f"{printable(query)!r} is not a phone number: {printable(result.reason or '')}"
    shown = printable(number(result.number or query, unmasked))
    if result.entry is None:
        detail = f": {printable(result.reason)}" if result.reason else ""
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
    cells = [(printable(k), printable(v or "-")) for k, v in rows]
    width = max(len(k) for k, _ in cells)
    return "\n".join(f"{k.ljust(width)}  {v}" for k, v in cells)


def directory_json(result: DirectoryResult, *, unmasked: bool) -> dict[str, Any]:
    entry = result.entry
    return {
        "status": result.status,
        "number": result.number if unmasked else mask_number(result.number),
        "reason": result.reason,
        "entry": None
        if entry is None
        else {
            "name": entry.name,
            "account_id": entry.account_id,
            "tier": entry.tier,
            "language": entry.language,
            "notes": entry.notes,
            "extra": thaw_json(entry.extra),
        },
    }


def import_json(report: ImportReport) -> dict[str, Any]:
    return {
        "file": report.path,
        "refused": report.refused,
        "rows": report.rows,
        "inserted": report.inserted,
        "updated": report.updated,
        "problems": [{"line": p.line, "reason": p.reason} for p in report.problems],
        "duplicates": [
            {"number": mask_number(d.number), "lines": list(d.lines)} for d in report.duplicates
        ],
        "elapsed_s": round(report.elapsed_s, 3),
    }


# Why calls end, in words: the record keeps the server's code (rtc.DisconnectReason names,
# and AGENT_HANGUP for the agent's own), scripts read it from --json.
_ENDED: dict[str, str] = {
    "CLIENT_INITIATED": "caller hung up",
    "AGENT_HANGUP": "agent hung up",
    "ROOM_DELETED": "room deleted",
    "ROOM_CLOSED": "room closed",
    "SERVER_SHUTDOWN": "server shut down",
    "PARTICIPANT_REMOVED": "caller removed",
    "DUPLICATE_IDENTITY": "replaced by a duplicate identity",
    "STATE_MISMATCH": "server state mismatch",
    "JOIN_FAILURE": "could not join",
    "MIGRATION": "moved to another server",
    "SIGNAL_CLOSE": "connection lost",
    "CONNECTION_TIMEOUT": "connection timed out",
    "MEDIA_FAILURE": "audio failed",
    "USER_UNAVAILABLE": "caller unavailable",
    "USER_REJECTED": "call rejected",
    "SIP_TRUNK_FAILURE": "SIP trunk failed",
    "UNKNOWN": "unknown",
    "UNKNOWN_REASON": "unknown",
}


def ended(reason: str | None) -> str:
    """Why a call ended, in plain words; a code this list does not know, made readable."""
    if not reason:
        return "-"
    return _ENDED.get(reason) or printable(reason.replace("_", " ").lower())


def usage_entries(usage: Any) -> list[dict[str, Any]]:
    """The per-model usage of a record as objects; records written before usage was stored
    as objects hold each model's Python repr, read back here."""
    models = thaw_json(usage).get("models", []) if isinstance(usage, Mapping) else []
    out = []
    for item in models:
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, str) and (parsed := _from_repr(item)) is not None:
            out.append(parsed)
    return out


_REPR = re.compile(r"(\w+)ModelUsage\((.*)\)", re.S)
_REPR_FIELD = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|[^,]*)(?:, |$)")


def _from_repr(text: str) -> dict[str, Any] | None:
    if (m := _REPR.fullmatch(text)) is None:
        return None
    fields: dict[str, Any] = {}
    for name, raw in _REPR_FIELD.findall(m[2]):
        try:
            fields[name] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            fields[name] = raw
    return fields


def usage_summary(usage: Any) -> str:
    """One readable line per model: 'llm openai/gpt-4.1-mini: input tokens 1200, ...'."""
    entries = usage_entries(usage)
    if not entries:
        return _pairs(usage)  # any other shape: its keys and values
    lines = []
    for e in entries:
        kind = str(e.get("type", "")).removesuffix("_usage") or "model"
        name = "/".join(str(e[k]) for k in ("provider", "model") if e.get(k))
        figures = ", ".join(
            f"{k.replace('_', ' ')} {_figure(v)}{' s' if k.endswith('duration') else ''}"
            for k, v in e.items()
            if k not in ("type", "provider", "model") and v not in (0, 0.0, None, "")
        )
        lines.append(printable(f"{kind} {name}: {figures or 'nothing used'}"))
    return "\n            ".join(lines)


def _figure(value: Any) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


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
            ended(c.disconnect_reason),
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
        "ended_because": None if c.disconnect_reason is None else ended(c.disconnect_reason),
        "turns": c.turns,
    }


def record_json(record: CallRecord, *, unmasked: bool) -> dict[str, Any]:
    models = usage_entries(record.usage)
    return {
        **summary_json(record.summary, unmasked=unmasked),
        "providers": thaw_json(record.providers),
        "usage": {"models": models} if models else thaw_json(record.usage),
        "timeline": [_event_json(e, unmasked) for e in timeline(record)],
    }


def _event_json(event: TimelineEvent, unmasked: bool) -> dict[str, Any]:
    fields = {k: thaw_json(getattr(event.event, k)) for k in event.event.__slots__}
    if not unmasked:
        fields = json.loads(_masked(json.dumps(fields, ensure_ascii=False), unmasked))
    return {"kind": event.kind, **fields, "time": iso(event.time)}


def _masked(text: str, unmasked: bool) -> str:
    # Records keep transcripts, statuses and tool arguments masked since they are written
    # so; one written before, or by a recorder told to keep full numbers, is masked here.
    return text if unmasked else mask_numbers_in(text)


def call_details(record: CallRecord, *, unmasked: bool) -> str:
    c = record.summary
    head = [
        f"call {printable(c.call_id)}  {printable(c.status)}",
        f"  room      {printable(c.room or '-')}",
        f"  route     {printable(c.route or '-')}",
        f"  caller    {printable(number(c.caller_number, unmasked))}",
        f"  called    {printable(c.called_number or '-')}",
        f"  started   {when(c.started_at)}",
        f"  answered  {when(c.answered_at)}",
        f"  ended     {when(c.ended_at)}  ({ended(c.disconnect_reason)})",
        f"  providers {_pairs(record.providers)}",
        f"  usage     {usage_summary(record.usage)}",
        "",
        "timeline",
    ]
    events = [
        f"  {_offset(e.time - c.started_at)}  {_masked(_describe(e), unmasked)}"
        for e in timeline(record)
    ]
    transcript = [
        f"  {_ROLES.get(t.role, printable(t.role))}: {printable(_masked(t.text, unmasked))}"
        + ("  [interrupted]" if t.interrupted else "")
        for t in record.transcript
    ]
    return "\n".join(
        [*head, *(events or ["  (nothing)"]), "", "transcript", *(transcript or ["  (none)"])]
    )


def _offset(seconds: float) -> str:
    return f"{seconds:+8.1f} s"


# The codes a record's entries carry at their end: "dialled-1: left (CLIENT_INITIATED)",
# "refused: PREMIUM".
_LEFT = re.compile(r"\(([A-Z_]+)\)$")
_REFUSED = re.compile(r"refused: ([A-Z_]+)")


def _describe(event: TimelineEvent) -> str:
    e = event.event
    if isinstance(e, StatusChange):
        status = _LEFT.sub(lambda m: f"({ended(m[1])})", e.status)
        return f"status  {printable(status)}"
    if isinstance(e, Turn):
        cut = "  [interrupted]" if e.interrupted else ""
        said = f"{_ROLES.get(e.role, printable(e.role)):<7} {printable(e.text)}{cut}"
        return f"{said}\n{'':14}{latency(e.latency)}" if e.latency else said
    arguments = json.dumps(thaw_json(e.arguments), ensure_ascii=False)
    if isinstance(e.result, str) and (m := _REFUSED.fullmatch(e.result)):
        result = f"refused: {refusal_words(m[1]) or m[1]}"
    else:
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
