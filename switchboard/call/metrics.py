"""Prometheus metrics of the calls, fed by their events.

Each call runs in its own job process; the worker serves ``/metrics`` on
``SWITCHBOARD_METRICS_PORT`` through the framework's Prometheus support, which in
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by ``worker.build_server``) sums what
every job process wrote to its files there. The metrics are defined at import, which
happens once in the forkserver (``worker.PRELOAD_MODULES``), after the framework has set
the directory: every job process inherits them already in multiprocess mode.

``MetricsSink`` is an EventLog listener, as the call record's sink is: one place maps what
happened to the figures. Label values are bounded: route names come from routes.toml,
reasons from LiveKit's disconnect reasons, tools from the tool table.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from livekit.agents import AgentSession, JobContext, llm, tts
from livekit.agents.voice.events import AgentStateChangedEvent
from prometheus_client import Counter, Gauge, Histogram, multiprocess

from switchboard.call.event_types import (
    AgentHangup,
    CallerLeft,
    CallEvent,
    DialDecision,
    JobStarted,
    ProviderFailed,
    RoomDisconnected,
    RouteChosen,
    SessionStarted,
    ToolCalled,
    ToolFailed,
    Transcript,
)
from switchboard.call.providers import Providers

_TURN_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.1, 1.5, 2.0, 2.5, 3.0, 4.0, 6.0)
_START_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0)

CALLS_ACTIVE = Gauge(
    "switchboard_calls_active",
    "Calls in progress on this worker",
    multiprocess_mode="livesum",  # only processes still alive count (see forget_dead)
)
CALLS_ANSWERED = Counter("switchboard_calls_answered", "Calls answered", ["route"])
CALLS_ENDED = Counter("switchboard_calls_ended", "Calls ended, by why", ["reason"])
TIME_TO_ANSWER = Histogram(
    "switchboard_time_to_answer_seconds",
    "From the job's start to the session taking the caller's audio",
    buckets=_START_BUCKETS,
)
TIME_TO_GREETING = Histogram(
    "switchboard_time_to_greeting_seconds",
    "From the job's start to the agent's first audio",
    buckets=_START_BUCKETS,
)
TURN_LATENCY = Histogram(
    "switchboard_turn_latency_seconds",
    "Each turn's figures as the framework measured them (figure: end_of_turn, "
    "transcription, llm_ttft, tts_ttfb, e2e)",
    ["figure"],
    buckets=_TURN_BUCKETS,
)
REPLIES_INTERRUPTED = Counter(
    "switchboard_replies_interrupted", "Agent replies the caller spoke over and cut off"
)
TOOL_CALLS = Counter(
    "switchboard_tool_calls", "Tool calls, by tool and outcome", ["tool", "outcome"]
)
POLICY_REFUSALS = Counter(
    "switchboard_policy_refusals", "Dial-outs the dialling policy refused", ["policy"]
)
PROVIDER_FAILURES = Counter(
    "switchboard_provider_failures",
    "AI providers that failed for good mid-call (the call apologised and ended)",
    ["source"],
)
PROVIDER_FALLBACKS = Counter(
    "switchboard_provider_fallbacks",
    "Switches to the next model or voice of a fallback chain",
    ["kind"],
)

_FILE = re.compile(r"gauge_live\w*?_(\d+)\.db")


class MetricsSink:
    """Turns one call's events into the metrics; times are from the job's start."""

    def __init__(self) -> None:
        self._started: float | None = None
        self._route = ""
        self._active = False
        self._ended = False
        self._greeted = False

    def __call__(self, event: CallEvent) -> None:
        match event:
            case JobStarted():
                self._started = time.monotonic()
            case RouteChosen(route=route):
                self._route = route
            case SessionStarted():
                CALLS_ANSWERED.labels(route=self._route).inc()
                CALLS_ACTIVE.inc()
                self._active = True
                if self._started is not None:
                    TIME_TO_ANSWER.observe(time.monotonic() - self._started)
            case Transcript(latency=latency, interrupted=interrupted):
                for figure, ms in (latency or {}).items():
                    TURN_LATENCY.labels(figure=figure.removesuffix("_ms")).observe(ms / 1000)
                if interrupted:
                    REPLIES_INTERRUPTED.inc()
            case ToolCalled(tool=tool):
                TOOL_CALLS.labels(tool=tool, outcome="ok").inc()
            case ToolFailed(tool=tool):
                TOOL_CALLS.labels(tool=tool, outcome="error").inc()
            case DialDecision(allowed=False, policy=policy):
                POLICY_REFUSALS.labels(policy=policy).inc()
            case ProviderFailed(source=source):
                PROVIDER_FAILURES.labels(source=source).inc()
            case CallerLeft(reason=reason) | RoomDisconnected(reason=reason):
                self.ended(reason)
            case AgentHangup():
                self.ended("AGENT_HANGUP")

    def follow(self, ctx: JobContext, session: AgentSession[Any], providers: Providers) -> None:
        """What the events do not say: the agent's first audio, a fallback chain moving
        on, and the job's end (a call that ends without a cause seen still leaves)."""

        def on_state(ev: AgentStateChangedEvent) -> None:
            if ev.new_state == "speaking":
                self.agent_speaking()

        session.on("agent_state_changed", on_state)
        if isinstance(providers.llm, llm.FallbackAdapter):
            providers.llm.on("llm_availability_changed", _on_fallback("llm"))
        if isinstance(providers.tts, tts.FallbackAdapter):
            providers.tts.on("tts_availability_changed", _on_fallback("tts"))

        async def over(_reason: str) -> None:
            self.job_over()

        ctx.add_shutdown_callback(over)

    def agent_speaking(self) -> None:
        """The agent's first audio of the call (the session's state turned "speaking")."""
        if not self._greeted and self._started is not None:
            self._greeted = True
            TIME_TO_GREETING.observe(time.monotonic() - self._started)

    def ended(self, reason: str) -> None:
        """The call's end; the first cause seen is the call's (as in the record)."""
        if not self._ended:
            self._ended = True
            CALLS_ENDED.labels(reason=reason).inc()
        self.job_over()

    def job_over(self) -> None:
        if self._active:
            self._active = False
            CALLS_ACTIVE.dec()


def _on_fallback(kind: str) -> Callable[[Any], None]:
    def on_change(ev: Any) -> None:
        # The chain marks a provider unavailable as it moves on to the next one.
        if not getattr(ev, "available", True):
            PROVIDER_FALLBACKS.labels(kind=kind).inc()

    return on_change


def forget_dead(folder: Path) -> None:
    """Drop the live gauges of job processes that are gone: a process that crashed never
    took its call off ``calls_active``. Each job process runs it as it starts
    (``worker.Prewarm``), so the figure heals when the next process is warmed."""
    if not folder.is_dir():
        return
    for name in os.listdir(folder):
        found = _FILE.fullmatch(name)
        if found is None:
            continue
        pid = int(found.group(1))
        if not _alive(pid):
            with contextlib.suppress(OSError):
                multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
