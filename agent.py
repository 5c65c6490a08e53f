"""Switchboard agent worker: `uv run agent.py console|dev|start`.

This file only wires things together; the call flow lives in `switchboard/call/flow.py`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

from dotenv import load_dotenv
from livekit.agents import JobContext, cli

from switchboard.call.flow import CallConfig, handle_call
from switchboard.config.errors import ConfigError, Problem, collect, missing_fix
from switchboard.config.pins import RoutePins, read_pins, weak_pins
from switchboard.config.policy import (
    load_policy,
    loop_problems,
    policy_problems,
    with_own_numbers,
)
from switchboard.config.prompts import load_prompts
from switchboard.config.routes import load_routes
from switchboard.config.settings import load_settings
from switchboard.config.startup import ai_summary, keyless_language_warnings
from switchboard.telephony.config import line_numbers
from switchboard.worker import build_server
from tools import tools_for

# Only the entrypoint reads .env.local; the real environment wins over the file.
load_dotenv(".env.local", override=False)


def _configuration() -> CallConfig:
    """Everything checked before the worker takes a call: never start half-configured."""
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    # console runs without a server, and download-files runs at image build time, where no
    # credentials exist (and must not: they would be baked into the image).
    offline = command in ("console", "download-files")
    # The only reading of the environment: calls get what is read here, at start.
    try:
        settings = load_settings(os.environ, need_server=not offline)
    except ConfigError as e:
        _stop(e, "See .env.example for every variable.")
    # Every file is checked even when another is bad: one run shows every problem.
    files, problems = settings.files, list[Problem]()
    prompts = collect(
        lambda: load_prompts(files.prompts), problems, missing_fix("SWITCHBOARD_PROMPTS_DIR")
    )
    routes = collect(
        lambda: load_routes(files.routes, files.prompts),
        problems,
        missing_fix("SWITCHBOARD_ROUTES"),
    )
    region = (settings.calls.default_region,)
    policy = collect(
        lambda: load_policy(files.policy, region), problems, missing_fix("SWITCHBOARD_POLICY")
    )
    own_numbers = line_numbers(files.telephony, os.environ)
    if policy is not None:
        problems += loop_problems(policy, own_numbers)
        policy = with_own_numbers(policy, own_numbers)
    pins = RoutePins()
    if routes is not None:
        pins, pin_problems = read_pins(routes, os.environ)
        problems += pin_problems
        if policy is not None:
            problems += policy_problems(routes, policy)
    if prompts is None or routes is None or policy is None or problems:
        _stop(ConfigError(problems), "Check it with: uv run switchboard check")
    for warning in weak_pins(routes, os.environ):
        logging.getLogger("switchboard").warning("weak PIN: %s", warning)
    if settings.ai.keyless:
        logging.getLogger("switchboard").warning(
            "no AI provider configured: running keyless (offline voice, no conversation). "
            "Set SWITCHBOARD_OPENAI_BASE_URL for an OpenAI-compatible endpoint, or use a "
            "LiveKit Cloud LIVEKIT_URL for LiveKit Inference (DEEPGRAM_API_KEY optional)"
        )
    return CallConfig(settings, routes, policy, tools_for, prompts, pins)


def _stop(error: ConfigError, hint: str) -> NoReturn:
    sys.stderr.write(f"{error}\n{hint}\n")
    raise SystemExit(2)


CONFIG = _configuration()
SETTINGS = CONFIG.settings


# On a deploy's SIGTERM, calls in progress finish (up to SWITCHBOARD_DRAIN_TIMEOUT) or
# hear a goodbye, as SWITCHBOARD_SHUTDOWN_MODE says; capacity is counted in calls
# (switchboard/worker.py).
server = build_server(SETTINGS)


@server.on("worker_started")
def _say_what_answers() -> None:
    # Once the framework's logging is set up: who listens, thinks and speaks, and why.
    logger = logging.getLogger("switchboard")
    for line in ai_summary(SETTINGS.ai):
        logger.info(line)
    if SETTINGS.ai.keyless:
        for warning in keyless_language_warnings(CONFIG.prompts, CONFIG.routes):
            logger.warning(warning)


@server.rtc_session(agent_name=SETTINGS.server.agent_name)
async def entrypoint(ctx: JobContext) -> None:
    await handle_call(ctx, CONFIG, ctx.proc.userdata["vad"])


# `uv run agent.py console|dev|start`; the LiveKit CLI (`lk agent console|dev`) imports
# this file through `python -m livekit.agents` instead and runs `server` itself.
if __name__ == "__main__":
    cli.run_app(server)
