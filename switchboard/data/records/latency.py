"""Turn latency over call records: the percentiles `switchboard stats` prints."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from switchboard.data.records.model import TURN_FIGURES, CallRecord


@dataclass(frozen=True, slots=True)
class FigureStats:
    figure: str  # one of TURN_FIGURES
    n: int
    p50_ms: float | None
    p95_ms: float | None
    max_ms: float | None


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100), None for no values: with the few turns of
    a handful of calls, an interpolated figure would claim a precision there is not."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def turn_latency(records: Sequence[CallRecord]) -> list[FigureStats]:
    """Each figure's percentiles over every turn of ``records`` that has it."""
    out = []
    for figure in TURN_FIGURES:
        values = [t.latency[figure] for r in records for t in r.transcript if figure in t.latency]
        p50, p95 = percentile(values, 50), percentile(values, 95)
        out.append(FigureStats(figure, len(values), p50, p95, max(values) if values else None))
    return out


def interrupted_replies(records: Sequence[CallRecord]) -> int:
    return sum(t.interrupted for r in records for t in r.transcript)
