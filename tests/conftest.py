"""Shared fixtures. Lab tests get a running telephony lab: the one `make lab-up` left
running (reused), or one started here for the session and stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from lab import lanes
from lab.procs import http_ok
from lab.stack import Lab, LabConfig, ai_worker_env
from lab.testing.fake_openai import FakeOpenAI
from lab.testing.handles import AiLab, LabHandle

# A 2-core CI machine running the lab beside the tests is slow and uneven: judge
# property tests on their examples, not on per-example wall time.
settings.register_profile("switchboard", deadline=None, print_blob=True)
settings.load_profile("switchboard")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--lane",
        metavar="K/N",
        help="run lane K of N (lab/lanes.py): lane 1 the unit tests and its share of lab modules",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test module declares its category; a module without one is a mistake."""
    for item in items:
        if not any(item.iter_markers(name) for name in ("unit", "lab", "evals")):
            raise pytest.UsageError(f"{item.nodeid}: set pytestmark to unit, lab or evals")
    if raw := config.getoption("--lane"):
        try:
            lane, of = lanes.parse_lane(raw)
        except ValueError as e:
            raise pytest.UsageError(str(e)) from None
        keep = _lane_items(items, lane, of)
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = [i for i in items if i in keep]


def _module(item: pytest.Item) -> str:
    return item.nodeid.partition("::")[0]


def _lane_items(items: list[pytest.Item], lane: int, of: int) -> set[pytest.Item]:
    """This lane's tests: the lab modules ``lanes.split`` gives it, and in lane 1 all others."""
    weights = lanes.load_weights()
    lab_modules = sorted({_module(i) for i in items if i.get_closest_marker("lab")})
    others = {_module(i) for i in items} - set(lab_modules)
    head_start = sum(weights.get(m, 0.0) for m in others)
    mine = set(lanes.split(weights, lab_modules, of, head_start=head_start)[lane - 1])
    if lane == 1:
        mine |= others
    return {i for i in items if _module(i) in mine}


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
    # Webhooks on: the guardian's tests start a guardian where livekit-server sends them.
    env = lab.up(agent_mode="start", webhooks=True)
    try:
        yield LabHandle(env, lab)
    finally:
        lab.down()


@pytest.fixture(scope="session")
def ai_lab(lab: LabHandle) -> Iterator[AiLab]:
    if lab.env.get("LAB_AI_WORKER") == "1":
        # Two workers under one agent name would share the calls, and the lab's own does
        # not play the tests' scripts.
        pytest.fail("the running lab has its own AI worker (make lab-up AI=1): restart it without")
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
