"""The AI worker's Prometheus endpoint, scraped by a real Prometheus server (Debian's
package) during real calls, and each turn's latency in the call record of such a call."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from lab.audio import load_pcmu, prompt_pcmu, silence_pcmu
from lab.stack import LabConfig
from lab.testing.calls import call_ai, caller_event
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab
from lab.testing.records import lab_database, wait_record
from switchboard.cli.main import main

pytestmark = pytest.mark.lab

PROMPT = "I would like to speak to sales"
SCRAPE_S = 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[str]:
    """A Prometheus server scraping the AI worker every second; its HTTP API's URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus is not installed: run lab/setup.sh (Debian package prometheus)")
    target = f"127.0.0.1:{LabConfig().ai_metrics_port}"
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global:\n  scrape_interval: {SCRAPE_S}s\n  evaluation_interval: {SCRAPE_S}s\n"
        f"scrape_configs:\n  - job_name: switchboard\n    static_configs:\n"
        f"      - targets: ['{target}']\n"
    )
    port = _free_port()
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def query(api: str, promql: str) -> float | None:
    """The value of an instant query with one result, or None (no series yet)."""
    url = f"{api}/api/v1/query?query={urllib.parse.quote(promql)}"
    try:
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            body = json.loads(await response.text())
    except aiohttp.ClientError:
        return None  # the server is still starting
    result = body.get("data", {}).get("result", [])
    return float(result[0]["value"][1]) if result else None


async def until(api: str, promql: str, at_least: float, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = await query(api, promql)
        if value is not None and value >= at_least:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{promql} = {value}, expected >= {at_least} by now")
        await asyncio.sleep(0.5)  # the next scrape; Prometheus pushes nothing


async def test_prometheus_scrapes_calls_and_turn_latency(
    ai_lab: AiLab,
    prometheus: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await until(prometheus, 'up{job="switchboard"}', 1)
    names = (
        "switchboard_calls_answered_total",
        "switchboard_calls_ended_total",
        'switchboard_turn_latency_seconds_count{figure="e2e"}',
        'switchboard_turn_latency_seconds_count{figure="end_of_turn"}',
        "switchboard_time_to_answer_seconds_count",
        "switchboard_time_to_greeting_seconds_count",
    )
    before = {n: await query(prometheus, f"sum({n})") or 0.0 for n in names}

    ai_lab.fake.script("metrics", [say("Hello, how can I help?"), say("Sure.")])
    # By time, not from the queue: earlier tests may have left utterances in it.
    ai_lab.fake.transcribe_with(lambda _at: PROMPT)
    audio = silence_pcmu(3.0) + load_pcmu(prompt_pcmu(PROMPT)) + silence_pcmu(6.0)
    try:
        result = await call_ai(ai_lab, "metrics", send_audio=audio, hangup=9.0, timeout=90)
    finally:
        ai_lab.fake.transcribe_with(None)
    assert result.answered

    # The call's record: each turn's figures, and `calls show` printing them.
    call_id = caller_event(ai_lab.lab, result)["caller"]["call_id"]
    async with lab_database(ai_lab.lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=20)
    said = [t for t in record.transcript if t.role == "user"]
    replies = [t for t in record.transcript if t.role == "assistant" and "e2e_ms" in t.latency]
    assert said and "end_of_turn_ms" in said[0].latency and "transcription_ms" in said[0].latency
    assert replies, record.transcript
    reply = replies[0].latency
    assert 0 < reply["e2e_ms"] < 10_000 and "llm_ttft_ms" in reply and "tts_ttfb_ms" in reply
    monkeypatch.setenv("DATABASE_URL", ai_lab.env["LAB_DATABASE_URL"])
    # The command runs its own event loop: in a thread, beside the test's.
    assert await asyncio.to_thread(main, ["calls", "show", call_id]) == 0
    shown = capsys.readouterr().out
    assert "end to end" in shown and "end of turn" in shown

    # Prometheus has the call, read back through its HTTP API.
    for name in names:
        await until(prometheus, f"sum({name})", before[name] + 1)
    await until(prometheus, "-sum(switchboard_calls_active)", 0)  # none left active
    p95 = await query(
        prometheus,
        "histogram_quantile(0.95, sum by (le) (switchboard_turn_latency_seconds_bucket"
        '{figure="e2e"}))',
    )
    assert p95 is not None and 0 < p95 <= 6.0
