"""`switchboard guardian`: the dispatch guardian, a service beside the LiveKit server.

It dispatches the agent again where a caller has none (a refused dispatch, a worker that
died mid-call) and, when no agent can be found in time, sends the caller to an overflow
destination or ends the call. Configured by environment variables only.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import TypeAlias

from switchboard.cli.errors import config_failed
from switchboard.config.errors import ConfigError
from switchboard.config.settings import ENV_VARS
from switchboard.guardian.config import load_guardian_config
from switchboard.guardian.main import run_guardian
from switchboard.safe_text import shown_lines

# A string: _SubParsersAction is generic only to type checkers, not at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers) -> None:
    variables = "\n".join(
        f"  {v.name:36} {v.help} (default: {v.default or 'none'})"
        for v in ENV_VARS
        if v.part in ("server", "guardian") or v.name == "SWITCHBOARD_EVENTS_FILE"
    )
    p = subparsers.add_parser(
        "guardian",
        help="run the dispatch guardian: no caller left without an agent",
        description="Watch rooms (signed webhooks plus periodic reconciliation) and dispatch "
        "the agent again where a caller has none; out of budget, transfer or end the call. "
        "Safe to restart and to run twice.",
        epilog="environment:\n" + variables,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=run)


def run(_args: argparse.Namespace) -> int:
    try:
        config = load_guardian_config(os.environ)
    except ConfigError as e:
        return config_failed(e)
    # Every decision is worth a line: the operator's record of who was re-dispatched.
    logging.getLogger("switchboard").setLevel(logging.INFO)
    try:
        asyncio.run(run_guardian(config))
    except OSError as e:  # the port is taken, most often
        print(f"error: {shown_lines(e)}", file=sys.stderr)
        return 1
    return 0
