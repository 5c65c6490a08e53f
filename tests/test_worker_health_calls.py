"""The worker's own health endpoint and the load it reports, on the lab's keyless worker:
what an orchestrator probes, and what lets LiveKit stop sending calls to a full worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from lab.stack import LabConfig
from lab.testing.calls import call_lab, worker_info
from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab

MAX_CALLS = 30  # the lab worker's SWITCHBOARD_MAX_CALLS (lab/stack.py)


async def until(port: int, ok: Callable[[dict[str, Any]], bool], timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    info = await worker_info(port)
    while not ok(info):
        if time.monotonic() > deadline:
            raise AssertionError(f"worker never reached the expected state: {info}")
        await asyncio.sleep(0.1)
        info = await worker_info(port)
    return info


async def test_health_and_load_follow_the_calls(lab: LabHandle) -> None:
    port = LabConfig().worker_port
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as response:
        assert (response.status, await response.text()) == (200, "OK")
    idle = await until(port, lambda i: i.get("active_jobs", 0) == 0, timeout=20)
    assert idle["agent_name"] == lab.env["LAB_AGENT_NAME"]

    call = asyncio.create_task(call_lab(lab, from_number="+15105552222", timeout=30))
    # The worker recomputes its load every half second; protobuf's JSON leaves out zeros.
    busy = await until(port, lambda i: i.get("worker_load", 0) > 0, timeout=20)
    # Load is counted in calls (SWITCHBOARD_MAX_CALLS), not CPU: one call of 30.
    assert busy["worker_load"] == pytest.approx(1 / MAX_CALLS)
    result = await call
    assert result.answered
    await until(port, lambda i: i.get("active_jobs", 0) == 0, timeout=20)
