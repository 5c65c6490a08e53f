"""The evals' agents build, with their tools and mocks, without a model: what
``test_evals.py`` puts before a real model is known to be the call's agent even where
the evals are skipped (no AI keys)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from livekit.agents import Agent, llm

from switchboard.data.db import open_database
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing.policy import DialHistory
from tests import test_evals
from tests.eval_agents import (
    CALLER,
    MOCKS,
    PROMPTS,
    WITHHELD,
    Case,
    agent_for,
    cases,
    state_for,
)

pytestmark = pytest.mark.unit


@pytest_asyncio.fixture(loop_scope="function")
async def history(tmp_path: Path) -> AsyncIterator[SharedDialHistory]:
    db = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield SharedDialHistory(db, DialHistory())
    finally:
        await db.close()


def tool_names(agent: Agent) -> set[str]:
    return {name for tool in agent.tools for name in _names(tool)}


def _names(tool: llm.Tool | llm.Toolset) -> list[str]:
    if isinstance(tool, llm.Toolset):
        return [name for inner in tool.tools for name in _names(inner)]
    return [tool.id]


def test_every_shipped_route_is_evaluated_in_its_language() -> None:
    by_route = {c.route.name: c.language for c in cases()}
    assert by_route == {"spanish": "Spanish", "default": "English"}
    assert [c.route.name for c in test_evals.CASES] == test_evals.IDS == ["spanish", "default"]


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.route.name)
async def test_the_evals_agent_is_the_calls_agent_with_its_tools(
    case: Case, history: SharedDialHistory
) -> None:
    route = case.route
    agent = agent_for(route, history)
    names = tool_names(agent)
    assert {"add_participant", "transfer_call", "end_call"} <= names
    assert set(MOCKS) <= names, "a mock for a tool the agent does not have"
    # The route's own prompt, with the call's details as quoted data.
    instructions = str(agent.instructions)
    first_line = PROMPTS[route.prompt].splitlines()[1]
    assert first_line in instructions
    assert '"language": "' + route.language + '"' in instructions
    assert state_for(route).outbound_trunk_id  # a dial meets the policy, not "no trunk"


async def test_a_withheld_caller_is_known_to_the_agent_as_withheld(
    history: SharedDialHistory,
) -> None:
    route = cases()[-1].route
    withheld = str(agent_for(route, history, WITHHELD).instructions)
    assert '"caller_number_hidden": true' in withheld
    known = str(agent_for(route, history, CALLER).instructions)
    assert '"caller_number_hidden": false' in known
    assert str(CALLER.phone_number) not in known  # never given to the model


def test_without_a_key_the_evals_collect_and_say_why_they_skip() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"]
    done = subprocess.run(
        [*argv, "-m", "evals", test_evals.__file__],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    count = 5 * len(test_evals.CASES) + 1
    assert f"{count} skipped" in done.stdout
    assert "SKIPPED" in done.stdout and "needs OPENAI_API_KEY" in done.stdout
