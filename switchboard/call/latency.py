"""A turn's latency figures from the framework's per-message metrics.

livekit-agents 1.8.9 measures each turn on the chat message it adds: the caller's message
carries the end-of-turn decision and the transcript's delay, the agent's reply its LLM's
first token, its voice's first audio and the end-to-end figure (``ChatMessage.metrics``,
filled from the same measurements as the deprecated ``metrics_collected`` events, but
already joined per turn). Kept in milliseconds under our own names
(``records.model.TURN_FIGURES``), so the record does not change with the framework's.
"""

from __future__ import annotations

from collections.abc import Mapping

# The framework's metric → the record's figure.
_FIGURES = {
    "end_of_turn_delay": "end_of_turn_ms",
    "transcription_delay": "transcription_ms",
    "llm_node_ttft": "llm_ttft_ms",
    "tts_node_ttfb": "tts_ttfb_ms",
    "e2e_latency": "e2e_ms",
}


def turn_figures(metrics: Mapping[str, object]) -> dict[str, float]:
    """The figures present in a message's metrics, in ms; a value that is not a
    non-negative number (the framework leaves some out, never sends them wrong) is skipped."""
    out: dict[str, float] = {}
    for source, name in _FIGURES.items():
        value = metrics.get(source)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            out[name] = round(value * 1000, 1)
    return out


def speaking_times(metrics: Mapping[str, object]) -> dict[str, float]:
    """When the caller stopped speaking (a caller's message) or the agent's voice started
    (a reply), in wall-clock seconds, as the worker saw them: logged at debug level so that
    a turn measured at the phone (``bench.turns --debug``) splits into the way in, the
    worker and the way out."""
    return {
        k: float(v)
        for k in ("stopped_speaking_at", "started_speaking_at")
        if isinstance(v := metrics.get(k), int | float) and not isinstance(v, bool)
    }
