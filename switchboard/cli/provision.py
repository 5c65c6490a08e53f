"""`switchboard provision`: the CLI face of switchboard.provision.

The main CLI calls `add_parser(subparsers)` and later `args.func(args)`, which returns the
process exit code: 0 on success, 1 when the server refused a change, 2 for a problem the
user must fix locally (missing variable, bad telephony.toml).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from switchboard.cli.errors import config_failed
from switchboard.config.errors import ConfigError
from switchboard.config.settings import livekit_access
from switchboard.safe_text import shown_lines
from switchboard.telephony.config import load_config
from switchboard.telephony.provision import ProvisionError, provision


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "provision",
        help="create/update the SIP trunks and dispatch rules described in telephony.toml",
        description=(
            "Make the LiveKit server's SIP inbound/outbound trunks and dispatch rules match "
            "a telephony.toml file, idempotently. Objects are matched by name; objects on "
            "the server that the file does not name are left alone unless --prune is given. "
            "Needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET in the environment, and "
            "the passwords the file names (auth_password_env), except with --dry-run."
        ),
    )
    p.add_argument("--file", default="telephony.toml", help="default: %(default)s")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument("--prune", action="store_true", help="delete server objects not in the file")
    p.add_argument(
        "--json",
        action="store_true",
        help="print the resulting IDs by name as JSON on stdout (the plan goes to stderr)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # The file first: a missing file is the thing to fix, whatever the credentials say.
    # A dry run changes nothing, so it does not need the passwords the file names.
    try:
        config = load_config(args.file, os.environ, secrets=not args.dry_run)
    except FileNotFoundError:
        print(f"error: {args.file} not found; pass --file PATH", file=sys.stderr)
        return 2
    except ConfigError as e:
        return config_failed(e)
    try:
        url, api_key, api_secret = livekit_access(os.environ)
    except ConfigError as e:
        return config_failed(e)
    for var in sorted({var for _, _, var in config.unset_secrets}):
        print(
            f"note: {var} is not set, so this plan cannot show a password change; "
            f"set it (see .env.example) before provisioning for real",
            file=sys.stderr,
        )
    try:
        result = asyncio.run(
            provision(
                config,
                url=url,
                api_key=api_key,
                api_secret=api_secret,
                dry_run=args.dry_run,
                prune=args.prune,
                out=sys.stderr if args.json else sys.stdout,
            )
        )
    except ProvisionError as e:
        print(f"error: {shown_lines(e)}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    return 0
