"""`uv run agent.py console --text` as the README gives it: no LiveKit server, with no AI
keys (keyless) and with an AI (the OpenAI-compatible test double in place of a paid one).

The real console in a pseudo-terminal: what the user sees, that it ends with the call, and
the record the run leaves. Real processes on this machine only (no lab, no network); in the
`lab` category because it takes tens of seconds on a busy machine.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from lab.testing.fake_openai import DEFAULT, FakeOpenAI, say
from lab.testing.terminal import Terminal
from switchboard.config.prompts import load_prompts
from switchboard.data.db import open_database
from switchboard.data.records.model import CallSummary
from switchboard.data.records.query import list_calls

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
# Variables that would give the console a server or an AI provider (also from a
# developer's .env.local, which the real environment overrides).
CLEARED = (
    "LIVEKIT_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "OPENAI_API_KEY",
    "DEEPGRAM_API_KEY",
    "SWITCHBOARD_OPENAI_BASE_URL",
    "SWITCHBOARD_AI_MODE",
    "DATABASE_URL",
    "LIVEKIT_LOG_LEVEL",
)


def console_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LAB_", "SWITCHBOARD_"))}
    return {
        **env,
        **dict.fromkeys(CLEARED, ""),
        "SWITCHBOARD_AI_MODE": "auto",
        "SWITCHBOARD_STATE_DIR": str(tmp_path / "state"),
        "SWITCHBOARD_EVENTS_FILE": str(tmp_path / "events.jsonl"),
        "SWITCHBOARD_WORKER_PORT": "0",  # another worker may hold 8081 here
        "COLUMNS": "120",
        "TERM": "xterm",
    }


def test_keyless_console_greets_ends_and_leaves_its_own_record(tmp_path: Path) -> None:
    words = load_prompts(ROOT / "prompts")["keyless"]
    terminal = Terminal(
        [sys.executable, "agent.py", "console", "--text"], cwd=ROOT, env=console_env(tmp_path)
    )
    try:
        terminal.wait_for("running keyless", timeout=150)  # imports, on a busy machine
        # The words the caller hears, shown on the screen (the event line carries them).
        terminal.wait_for(" ".join(words.split()), timeout=120)
        # One run is one call: the console ends with it instead of waiting at a dead prompt.
        terminal.wait_for("leaving the console", timeout=60)
        assert terminal.wait_exit(timeout=60) == 0
    finally:
        terminal.close()
    seen = terminal.seen
    assert "Traceback" not in seen
    assert "url must be set" not in seen
    # INFO unless asked: the database's DEBUG lines flooded the screen before.
    assert "DEBUG" not in seen

    calls = asyncio.run(_calls(tmp_path / "state" / "switchboard.db"))
    assert len(calls) == 1
    (call,) = calls
    assert call.call_id.startswith("console-")
    assert call.status == "complete"
    assert call.disconnect_reason == "AGENT_HANGUP"


async def _calls(path: Path) -> list[CallSummary]:
    db = await open_database(f"sqlite:///{path}")
    try:
        return await list_calls(db)
    finally:
        await db.close()


def test_console_with_an_ai_holds_a_conversation(tmp_path: Path) -> None:
    # The AI: an OpenAI-compatible endpoint (the test double: no paid AI is reachable here).
    with FakeOpenAI() as fake:
        fake.script(DEFAULT, [say("Welcome to the switchboard."), say("You said hello, noted.")])
        env = {
            **console_env(tmp_path),
            "SWITCHBOARD_OPENAI_BASE_URL": fake.base_url,
            "OPENAI_API_KEY": "test-double",
            "SWITCHBOARD_LLM_MODEL": "fake",
            "SWITCHBOARD_TTS": "espeak",
        }
        terminal = Terminal([sys.executable, "agent.py", "console", "--text"], cwd=ROOT, env=env)
        try:
            terminal.wait_for("Welcome to the switchboard.", timeout=180)  # the greeting
            terminal.wait_for("Type to talk to your agent", timeout=120)  # the prompt
            # The console drops keys typed while it is not reading (CI lost a whole line so):
            # type until they are echoed, then press Enter until the turn is under way.
            terminal.type_until("hello", shown="\u276f hello", timeout=90)
            terminal.type_until("\r", shown="You", timeout=90)
            terminal.wait_for("You said hello, noted.", timeout=120)  # the reply, printed
            os.kill(terminal.pid, signal.SIGTERM)  # the user leaves (Ctrl+C in a terminal)
            assert terminal.wait_exit(timeout=60) == 0
        finally:
            terminal.close()
    assert "Traceback" not in terminal.seen
    (call,) = asyncio.run(_calls(tmp_path / "state" / "switchboard.db"))
    assert call.turns >= 2
