"""Shared fixtures. Lab tests get a running telephony lab: the one `make lab-up` left
running (reused), or one started here for the session and stopped at the end."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from lab.procs import http_ok
from lab.stack import Lab, LabConfig, ai_worker_env

from .fake_openai import FakeOpenAI

# A 2-core CI machine running the lab beside the tests is slow and uneven: judge
# property tests on their examples, not on per-example wall time.
settings.register_profile("switchboard", deadline=None, print_blob=True)
settings.load_profile("switchboard")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test module declares its category; a module without one is a mistake."""
    for item in items:
        if not any(item.iter_markers(name) for name in ("unit", "lab", "evals")):
            raise pytest.UsageError(f"{item.nodeid}: set pytestmark to unit, lab or evals")


@dataclass(frozen=True)
class LabHandle:
    env: dict[str, str]
    lab: Lab

    @property
    def events_file(self) -> Path:
        return Path(self.env["LAB_EVENTS_FILE"])

    @property
    def http_url(self) -> str:
        return self.env["LIVEKIT_URL"].replace("ws://", "http://")

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines()]

    def wait_event(self, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """Wait (by polling under a deadline) for an event whose fields equal ``match``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for event in self.events():
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no event {match} within {timeout}s; events: {self.events()[-10:]}")


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


@pytest.fixture(scope="session")
def lab() -> Iterator[LabHandle]:
    if (
        os.geteuid() == 0
        and not os.environ.get("LAB_NETNS")
        and not os.environ.get("SWITCHBOARD_LAB_HOST_NETWORK")
    ):
        pytest.fail("lab tests run inside the lab's network namespace: use `make test`")
    config = LabConfig()
    running = Lab(config)
    if running.procs.running() and config.env_file.exists():
        env = _read_env(config.env_file)
        if http_ok(env["LIVEKIT_URL"].replace("ws://", "http://") + "/"):
            yield LabHandle(env, running)
            return
    lab = Lab(config)
    env = lab.up(agent_mode="start")
    try:
        yield LabHandle(env, lab)
    finally:
        lab.down()


@dataclass(frozen=True)
class AiLab:
    """The lab plus a second agent worker whose LLM and STT are an OpenAI-compatible test
    double (no cloud AI is reachable here); it answers LAB_AI_NUMBER."""

    lab: LabHandle
    fake: FakeOpenAI

    @property
    def env(self) -> dict[str, str]:
        return self.lab.env


@pytest.fixture(scope="session")
def ai_lab(lab: LabHandle) -> Iterator[AiLab]:
    with FakeOpenAI(host="127.0.0.1", port=0) as fake:
        lab.lab.start_agent(
            "start",
            name="agent-ai",
            env=ai_worker_env(lab.env, fake.base_url),
        )
        try:
            yield AiLab(lab, fake)
        finally:
            lab.lab.procs.stop("agent-ai")
