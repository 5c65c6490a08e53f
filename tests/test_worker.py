"""The worker's set-up that every job process depends on (switchboard/worker.py)."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from switchboard.config.settings import CALLS_PER_CPU, load_settings
from switchboard.data.recordings import DAY_S, create_file
from switchboard.worker import Prewarm, build_server

pytestmark = pytest.mark.unit

ENV = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "s" * 32,
    "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
    "SWITCHBOARD_LLM_MODEL": "fake",
    "SWITCHBOARD_MAX_CALLS": "4",
}


def test_the_prewarm_reaches_job_processes() -> None:
    # The framework pickles setup_fnc for every job process: a closure fails there, as
    # "error initializing process" for every call.
    server = build_server(load_settings(ENV))
    assert isinstance(server.setup_fnc, Prewarm)
    assert pickle.loads(pickle.dumps(server.setup_fnc)) == server.setup_fnc


def test_job_processes_get_the_key_the_worker_signs_goodbyes_with() -> None:
    server = build_server(load_settings(ENV))
    assert isinstance(server.setup_fnc, Prewarm)
    sent = pickle.loads(pickle.dumps(server.setup_fnc))  # as a job process receives it
    assert len(sent.goodbye_key) == 32
    assert sent.goodbye_key == server._goodbye_key  # private: what the drain signs with
    # A key per worker, drawn at its start: no other worker's (nor a guess) matches.
    assert build_server(load_settings(ENV))._goodbye_key != server._goodbye_key


PROBE = """
import json, runpy, sys, time
from switchboard.worker import PRELOAD_MODULES
for name in PRELOAD_MODULES:
    __import__(name)
before = set(sys.modules)
start = time.perf_counter()
sys.argv = ["agent.py", "start"]
main = runpy.run_path("agent.py", run_name="__mp_main__")
from switchboard.call.providers import build_providers
from switchboard.caller import caller_from_participant
from switchboard.data.db import create_database
config = main["CONFIG"]
caller = caller_from_participant("sip", "sip_1", {"sip.phoneNumber": "+15105550123"})
build_providers(config.settings, caller, config.routes.routes[-1])
create_database(config.settings.data.url)
print(json.dumps({"new": sorted(set(sys.modules) - before),
                  "seconds": time.perf_counter() - start}))
"""
HEAVY = ("switchboard", "tools", "sqlalchemy", "aiosqlite", "asyncpg", "livekit", "openai")


def _run_probe(code: str, state_dir: Path) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter with the test's settings; its last line of
    output, as JSON."""
    env = {**os.environ, **ENV, "SWITCHBOARD_STATE_DIR": str(state_dir)}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return out


def test_a_call_process_imports_nothing_heavy_after_the_preload(tmp_path: Path) -> None:
    # What a job process does after the forkserver's preload: agent.py again as
    # __mp_main__, then a call's providers and database. Anything heavy imported here is
    # imported again in every call's process.
    probe = _run_probe(PROBE, tmp_path)
    heavy = [m for m in probe["new"] if m.split(".")[0] in HEAVY]
    assert heavy == [], f"imported per call, not preloaded: {heavy}"
    assert probe["seconds"] < 5.0  # generous: about 0.1 s on an idle machine


WARM_PROBE = """
import asyncio, json, os, sys
from switchboard.worker import PRELOAD_MODULES
for name in PRELOAD_MODULES:
    __import__(name)
from livekit.agents import llm
from livekit.agents.tokenize import _basic_hyphenator
from livekit.agents.utils import http_context
from livekit.plugins import openai
from lab.testing.fake_openai import DEFAULT, FakeOpenAI, say
from switchboard.call.providers import openai_client
from switchboard.config.settings import load_settings
from switchboard.worker import Prewarm

class Proc:  # what the prewarm uses of the framework's JobProcess
    userdata = {}

with FakeOpenAI() as fake:
    fake.script(DEFAULT, [say("Hello.")])
    ai = load_settings({**os.environ, "SWITCHBOARD_OPENAI_BASE_URL": fake.base_url}).ai
    Prewarm(ai)(Proc())
    warmed = {
        "tls": http_context._ssl_context_for.cache_info().currsize,
        "hyphenator": _basic_hyphenator._get_hyphenator.cache_info().currsize,
        "chat": "chat" in vars(openai_client(fake.base_url, ai.openai_api_key or "none")),
    }
    before = set(sys.modules)

    async def call() -> None:
        # The call's first uses: its model's first request, and the session's prewarm.
        client = openai_client(fake.base_url, ai.openai_api_key or "none")
        model = openai.LLM(client=client, model="fake")
        chat = llm.ChatContext()
        chat.add_message(role="user", content="hi")
        async with model.chat(chat_ctx=chat) as stream:
            async for _ in stream:
                pass
        await client.models.list()

    asyncio.run(call())
print(json.dumps({"warmed": warmed, "new": sorted(set(sys.modules) - before)}))
"""
FIRST_USE = ("openai", "anyio", "jiter", "httpcore2", "httpx2", "pydantic", "livekit")


def test_the_prewarm_pays_what_a_call_would_pay_on_first_use(tmp_path: Path) -> None:
    # A job process after the forkserver's preload and the prewarm: the call's first model
    # request imports nothing more from the SDKs (each import blocked the call's loop on
    # the way to the answer), and what the prewarm builds is there before the call.
    probe = _run_probe(WARM_PROBE, tmp_path)
    assert probe["warmed"] == {"tls": 1, "hyphenator": 1, "chat": True}
    late = [m for m in probe["new"] if m.split(".")[0] in FIRST_USE]
    assert late == [], f"imported at the call's first request, not before it: {late}"


def test_capacity_is_counted_in_calls_sized_to_the_machine() -> None:
    sized = load_settings({**ENV, "SWITCHBOARD_MAX_CALLS": "0"}).calls.max_calls
    assert sized == CALLS_PER_CPU * (os.cpu_count() or 1)
    assert load_settings(ENV).calls.max_calls == 4


def test_a_missing_configuration_file_names_its_variable(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **ENV,
        "SWITCHBOARD_STATE_DIR": str(tmp_path),
        "SWITCHBOARD_ROUTES": str(tmp_path / "missing.toml"),
        "SWITCHBOARD_POLICY": str(tmp_path / "nowhere.toml"),
    }
    done = subprocess.run(
        [sys.executable, "agent.py", "start"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert f"{tmp_path / 'missing.toml'}: is not there\n  fix: create it, or point " in done.stderr
    assert "SWITCHBOARD_ROUTES at the file" in done.stderr
    assert "SWITCHBOARD_POLICY at the file" in done.stderr
    assert "Errno" not in done.stderr


async def test_the_worker_prunes_old_recordings(tmp_path: Path) -> None:
    old = create_file(tmp_path, "SCL_old", time.time())
    new = create_file(tmp_path, "SCL_new", time.time())
    os.utime(old, (time.time() - 31 * DAY_S,) * 2)
    server = build_server(load_settings({**ENV, "SWITCHBOARD_RECORDINGS_DIR": str(tmp_path)}))
    pruning = asyncio.create_task(server._prune_daily())
    try:
        deadline = time.monotonic() + 30
        while old.exists():  # the first pass runs at once, then one a day
            assert time.monotonic() < deadline, "the old recording was not pruned"
            await asyncio.sleep(0.05)
    finally:
        pruning.cancel()
    assert new.exists()
