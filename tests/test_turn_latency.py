"""Per-turn latency: from the framework's message metrics to the call record, `calls show`,
`switchboard stats`, and the Prometheus figures of a call's events."""

from __future__ import annotations

import asyncio
from itertools import count
from typing import Any

import pytest
from livekit.agents import llm
from livekit.agents.llm.chat_context import MetricsReport
from prometheus_client import REGISTRY

from switchboard.call.event_types import (
    CallerLeft,
    DialDecision,
    JobStarted,
    RouteChosen,
    SessionStarted,
    ToolCalled,
    Transcript,
)
from switchboard.call.events import EventLog
from switchboard.call.handlers import record_transcript
from switchboard.call.latency import speaking_times, turn_figures
from switchboard.call.metrics import MetricsSink, forget_dead
from switchboard.cli.formats import call_details
from switchboard.cli.main import main
from switchboard.data.db import open_database
from switchboard.data.records.latency import percentile, turn_latency
from switchboard.data.records.model import Turn
from switchboard.data.records.recorder import CallRecorder, get_call

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

USER = MetricsReport(end_of_turn_delay=0.31, transcription_delay=0.042, stopped_speaking_at=5.0)
REPLY = MetricsReport(llm_node_ttft=0.12, tts_node_ttfb=0.08, e2e_latency=0.61)


def test_figures_are_renamed_in_ms_and_bad_values_skipped() -> None:
    assert turn_figures(USER) == {"end_of_turn_ms": 310.0, "transcription_ms": 42.0}
    assert turn_figures(REPLY) == {"llm_ttft_ms": 120.0, "tts_ttfb_ms": 80.0, "e2e_ms": 610.0}
    assert turn_figures({"e2e_latency": -1.0, "llm_node_ttft": True, "tts_node_ttfb": "x"}) == {}


def test_speaking_times_are_the_wall_clock_anchors_present() -> None:
    assert speaking_times(USER) == {"stopped_speaking_at": 5.0}
    reply = MetricsReport(started_speaking_at=7.5, e2e_latency=0.6)
    assert speaking_times(reply) == {"started_speaking_at": 7.5}
    assert speaking_times({"started_speaking_at": True, "stopped_speaking_at": "x"}) == {}


def emitted(*items: object) -> list[Transcript]:
    events = EventLog(None)
    seen: list[Any] = []
    events.listeners.append(seen.append)
    for item in items:
        record_transcript(events, item)
    return seen


def test_transcript_events_carry_the_messages_figures_and_interruption() -> None:
    user = llm.ChatMessage(role="user", content=["Where is my order?"], metrics=USER)
    reply = llm.ChatMessage(role="assistant", content=["It has"], metrics=REPLY, interrupted=True)
    said, answered = emitted(user, reply)
    assert said.latency == {"end_of_turn_ms": 310.0, "transcription_ms": 42.0}
    assert said.interrupted is None
    assert answered.latency == {"llm_ttft_ms": 120.0, "tts_ttfb_ms": 80.0, "e2e_ms": 610.0}
    assert answered.interrupted is True


def test_a_message_without_figures_says_nothing_of_them() -> None:
    (said,) = emitted(llm.ChatMessage(role="assistant", content=["Hello."]))
    assert said.latency is None and said.interrupted is None


async def _record(url: str, call_id: str, e2e_ms: float) -> None:
    db = await open_database(url)
    try:
        ticks = (1_700_000_000.0 + i for i in count())
        recorder = CallRecorder(db, heartbeat_s=None, clock=lambda: next(ticks))
        await recorder.start(call_id=call_id, route="support", caller_number="+442071234567")
        user = {"end_of_turn_ms": 310.0, "transcription_ms": 42.0}
        recorder.add_turn(Turn("user", "Where is my order?", recorder.now(), user))
        reply = {"llm_ttft_ms": 120.0, "tts_ttfb_ms": 80.0, "e2e_ms": e2e_ms}
        recorder.add_turn(Turn("assistant", "It has", recorder.now(), reply, interrupted=True))
        await recorder.finish("CLIENT_INITIATED")
    finally:
        await db.close()


def test_the_record_keeps_each_turns_figures(db_url: str) -> None:
    asyncio.run(_record(db_url, "SCL_lat", 610.0))

    async def read() -> Any:
        db = await open_database(db_url)
        try:
            return await get_call(db, "SCL_lat")
        finally:
            await db.close()

    record = asyncio.run(read())
    user, reply = record.transcript
    assert dict(user.latency) == {"end_of_turn_ms": 310.0, "transcription_ms": 42.0}
    assert not user.interrupted
    assert reply.latency["e2e_ms"] == 610.0 and reply.interrupted
    shown = call_details(record, unmasked=False)
    assert "end of turn 310 ms  ·  stt 42 ms" in shown
    assert "llm first token 120 ms  ·  tts first audio 80 ms  ·  end to end 610 ms" in shown
    assert "agent: It has  [interrupted]" in shown


def test_stats_over_recent_calls(
    db_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", db_url)
    for i, e2e in enumerate((500.0, 700.0, 900.0)):
        asyncio.run(_record(db_url, f"SCL_{i}", e2e))
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "turn latency over the last 3 call(s)" in out
    assert "end to end             3    700 ms    900 ms    900 ms" in out
    assert "replies interrupted by the caller: 3" in out
    assert main(["stats", "--calls", "0"]) == 2


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 21)], 95) == 19.0
    assert [s.n for s in turn_latency([])] == [0, 0, 0, 0, 0]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_follow_a_calls_events() -> None:
    before = {
        "answered": sample("switchboard_calls_answered_total", route="sales"),
        "ended": sample("switchboard_calls_ended_total", reason="CLIENT_INITIATED"),
        "e2e": sample("switchboard_turn_latency_seconds_count", figure="e2e"),
        "tool": sample("switchboard_tool_calls_total", tool="transfer", outcome="ok"),
        "refused": sample("switchboard_policy_refusals_total", policy="lab"),
        "active": sample("switchboard_calls_active"),
        "answer": sample("switchboard_time_to_answer_seconds_count"),
    }
    sink = MetricsSink()
    sink(JobStarted(agent_name="a", ai_mode="openai", preloaded=True, pid=1))
    sink(RouteChosen(route="sales", reason="r", stt_model="m"))
    sink(SessionStarted())
    assert sample("switchboard_calls_active") == before["active"] + 1
    sink(Transcript(role="assistant", text="Hi", latency={"e2e_ms": 610.0}))
    sink(ToolCalled(tool="transfer", result="ok"))
    refused = DialDecision(
        allowed=False,
        reason="not allowed",
        policy="lab",
        call_id="c",
        caller=None,
        destination=None,
        number=None,
        region=None,
    )
    sink(refused)
    sink.agent_speaking()
    sink(CallerLeft(reason="CLIENT_INITIATED"))
    sink.job_over()  # the job's end after the caller's: counted once
    assert sample("switchboard_calls_answered_total", route="sales") == before["answered"] + 1
    assert sample("switchboard_calls_ended_total", reason="CLIENT_INITIATED") == before["ended"] + 1
    assert sample("switchboard_turn_latency_seconds_count", figure="e2e") == before["e2e"] + 1
    assert sample("switchboard_tool_calls_total", tool="transfer", outcome="ok") == (
        before["tool"] + 1
    )
    assert sample("switchboard_policy_refusals_total", policy="lab") == before["refused"] + 1
    assert sample("switchboard_calls_active") == before["active"]
    assert sample("switchboard_time_to_answer_seconds_count") == before["answer"] + 1


def test_forget_dead_drops_only_gone_processes(tmp_path: Any) -> None:
    import os

    mine = tmp_path / f"gauge_livesum_{os.getpid()}.db"
    gone = tmp_path / "gauge_livesum_999999999.db"
    other = tmp_path / "counter_999999999.db"
    for f in (mine, gone, other):
        f.write_bytes(b"")
    forget_dead(tmp_path)
    assert mine.exists() and other.exists() and not gone.exists()


def test_the_dashboard_queries_only_metrics_the_worker_serves() -> None:
    import json
    import re
    from pathlib import Path

    from switchboard.call import metrics

    served = {
        m._name  # prometheus_client's name, without _total
        for m in vars(metrics).values()
        if hasattr(m, "_name") and str(getattr(m, "_name", "")).startswith("switchboard_")
    }
    path = Path(__file__).parent.parent / "docs/grafana-dashboard.json"
    exprs = [t["expr"] for p in json.loads(path.read_text())["panels"] for t in p["targets"]]
    names = {n for e in exprs for n in re.findall(r"switchboard_\w+", e)}
    used = {re.sub(r"_(total|bucket)$", "", n) for n in names}
    assert used and used <= served, used - served
    assert served <= used, f"not on the dashboard: {served - used}"
