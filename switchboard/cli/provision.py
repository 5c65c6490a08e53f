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

from switchboard.telephony.config import TelephonyConfigError, load_config
from switchboard.telephony.provision import ProvisionError, provision

_ENV_HELP = {
    "LIVEKIT_URL": "the server URL, e.g. wss://my-project.livekit.cloud or http://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "an API key of that server",
    "LIVEKIT_API_SECRET": "the secret of that API key",
}


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "provision",
        help="create/update the SIP trunks and dispatch rules described in telephony.toml",
        description=(
            "Make the LiveKit server's SIP inbound/outbound trunks and dispatch rules match "
            "a telephony.toml file, idempotently. Objects are matched by name; objects on "
            "the server that the file does not name are left alone unless --prune is given. "
            "Needs LIVEKIT_URL, LIVEKIT_API_KEY and LIVEKIT_API_SECRET in the environment."
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
    missing = [name for name in _ENV_HELP if not os.environ.get(name)]
    if missing:
        for name in missing:
            print(f"error: {name} is not set: export {name}=<{_ENV_HELP[name]}>", file=sys.stderr)
        return 2
    try:
        config = load_config(args.file)
    except FileNotFoundError:
        print(f"error: {args.file} not found; pass --file PATH", file=sys.stderr)
        return 2
    except TelephonyConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        result = asyncio.run(
            provision(
                config,
                url=os.environ["LIVEKIT_URL"],
                api_key=os.environ["LIVEKIT_API_KEY"],
                api_secret=os.environ["LIVEKIT_API_SECRET"],
                dry_run=args.dry_run,
                prune=args.prune,
                out=sys.stderr if args.json else sys.stdout,
            )
        )
    except ProvisionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.as_json(), indent=2))
    return 0
