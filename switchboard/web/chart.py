"""Inline SVG for the call page: latency per agent turn (when the record has it) and the
call's timeline strip. Pure functions of the record; every text in the SVG is escaped."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from switchboard.data.records.model import CallRecord, Turn

WIDTH = 640
BAR_H = 18
GAP = 6
LABEL_W = 70
COLOURS = ("#2f6fb0", "#e0892b", "#3c9a5f", "#9b59b6", "#c0392b")
KIND_COLOURS = {"status": "#888888", "user": "#2f6fb0", "assistant": "#3c9a5f", "tool": "#e0892b"}


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    parts: tuple[tuple[str, float], ...]  # (component, seconds), stacked in this order

    @property
    def total(self) -> float:
        return sum(s for _, s in self.parts)


# An agent turn's stages as the record keeps them (``records.model.TURN_FIGURES``, in ms):
# the model's first token, then the voice's first audio; the rest of the end-to-end
# figure is the wait for the caller's turn to end and its transcript.
_STAGES = (("LLM first token", "llm_ttft_ms"), ("voice first audio", "tts_ttfb_ms"))


def turn_latency(turn: Turn) -> tuple[tuple[str, float], ...]:
    """An agent turn's measured latency in seconds by stage, if its record has figures."""
    figures = turn.latency
    stages = [(name, figures[key] / 1000) for name, key in _STAGES if key in figures]
    if "e2e_ms" in figures:
        rest = figures["e2e_ms"] / 1000 - sum(s for _, s in stages)
        stages.insert(0, ("turn end and transcript", max(rest, 0.0)))
    return tuple(stages)


def latency_bars(record: CallRecord) -> list[Bar]:
    bars = []
    for n, turn in enumerate(t for t in record.transcript if t.role == "assistant"):
        if parts := turn_latency(turn):
            bars.append(Bar(f"turn {n + 1}", parts))
    return bars


def bar_chart(bars: list[Bar]) -> str:
    """Horizontal stacked bars, one per turn, scaled to the slowest, with a legend."""
    if not bars:
        return ""
    top = max(b.total for b in bars) or 1.0
    scale = (WIDTH - LABEL_W - 60) / top
    names = list(dict.fromkeys(name for b in bars for name, _ in b.parts))
    colour = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}
    rows = []
    for i, bar in enumerate(bars):
        y = i * (BAR_H + GAP)
        x = float(LABEL_W)
        rows.append(f'<text x="0" y="{y + 13}" class="lbl">{escape(bar.label)}</text>')
        for name, seconds in bar.parts:
            w = seconds * scale
            tip = escape(f"{name}: {seconds:.2f} s")
            rows.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR_H}" '
                f'fill="{colour[name]}"><title>{tip}</title></rect>'
            )
            x += w
        rows.append(f'<text x="{x + 4:.1f}" y="{y + 13}" class="val">{bar.total:.2f} s</text>')
    legend_y = len(bars) * (BAR_H + GAP) + 10
    for i, name in enumerate(names):
        lx = LABEL_W + i * 130
        rows.append(
            f'<rect x="{lx}" y="{legend_y}" width="10" height="10" fill="{colour[name]}"/>'
            f'<text x="{lx + 14}" y="{legend_y + 9}" class="lbl">{escape(name)}</text>'
        )
    height = legend_y + 16
    return _svg(height, "latency per agent turn", "".join(rows))


def timeline_strip(record: CallRecord) -> str:
    """The call from its start to its end: a tick per status change, turn and tool call,
    one row each for the call's statuses, the caller, the agent and the tools."""
    start = record.summary.started_at
    times = [s.time for s in record.statuses] + [t.time for t in record.transcript]
    times += [c.time for c in record.tool_calls]
    end = record.summary.ended_at or max(times, default=start)
    span = max(end - start, 1.0)
    usable = WIDTH - LABEL_W - 20
    rows = {"status": 4, "user": 22, "assistant": 40, "tool": 58}
    names = {"status": "status", "user": "caller", "assistant": "agent", "tool": "tools"}
    marks = [
        f'<text x="0" y="{y + 11}" class="lbl">{names[kind]}</text>' for kind, y in rows.items()
    ]
    entries = [("status", s.time, s.status) for s in record.statuses]
    entries += [(t.role if t.role in rows else "user", t.time, t.text) for t in record.transcript]
    entries += [("tool", c.time, c.name) for c in record.tool_calls]
    for kind, at, text in entries:
        x = LABEL_W + (min(max(at, start), end) - start) / span * usable
        marks.append(
            f'<rect x="{x:.1f}" y="{rows[kind]}" width="4" height="14" '
            f'fill="{KIND_COLOURS[kind]}"><title>{escape(f"+{at - start:.1f} s {text}")}'
            "</title></rect>"
        )
    axis = f'<text x="{LABEL_W}" y="88" class="lbl">0 s</text><text x="{WIDTH - 50}" y="88" '
    axis += f'class="lbl">{span:.0f} s</text>'
    return _svg(92, "call timeline", "".join(marks) + axis)


def _svg(height: int, title: str, body: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )
