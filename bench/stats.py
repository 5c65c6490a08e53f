"""Small statistics for benchmark tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lab.phone import CallResult


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 1),
        "p95_ms": round(percentile(values, 95) * 1000, 1),
        "max_ms": round(max(values) * 1000, 1) if values else math.nan,
    }


def answered_summary(results: Sequence[CallResult]) -> dict[str, Any]:
    """Callers answered, refused and rung out, and the time to answer of those answered."""
    waits = [r.time_to_answer for r in results if r.time_to_answer is not None]
    answered = sum(r.answered for r in results)
    # no final response, or the 487 of our own CANCEL: the caller gave up ringing
    rang_out = sum(1 for r in results if not r.answered and r.ended_by != "remote")
    return {
        "placed": len(results),
        "answered": answered,
        "refused": len(results) - answered - rang_out,
        "rang_out": rang_out,
        "answer_p50_s": round(percentile(waits, 50), 2),
        "answer_p95_s": round(percentile(waits, 95), 2),
    }
