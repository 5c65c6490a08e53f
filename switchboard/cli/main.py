"""`switchboard`: the operator's command line. Each subcommand lives in its own module."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from dotenv import load_dotenv

from switchboard.cli import (
    console as cli_console,
    data as cli_data,
    guardian as cli_guardian,
    policy as cli_policy,
    provision as cli_provision,
    recordings as cli_recordings,
    routes as cli_routes,
)
from switchboard.config.reference import reference
from switchboard.config.settings import env_example
from switchboard.log_masking import mask_log_handlers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="switchboard",
        description="Operate the switchboard voice agent: provision telephony, inspect calls.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    cli_provision.add_parser(subparsers)
    cli_routes.add_parser(subparsers)
    cli_data.add_parser(subparsers)
    cli_policy.add_parser(subparsers)
    cli_guardian.add_parser(subparsers)
    cli_recordings.add_parser(subparsers)
    cli_console.add_parser(subparsers)
    env = subparsers.add_parser("env-example", help="print .env.example (every variable)")
    env.set_defaults(func=_print_env_example)
    ref = subparsers.add_parser(
        "config-reference", help="print the configuration reference (docs/CONFIGURATION.md)"
    )
    ref.set_defaults(func=_print_reference)
    return parser


def _print_env_example(_args: argparse.Namespace) -> int:
    print(env_example(), end="")
    return 0


def _print_reference(_args: argparse.Namespace) -> int:
    print(reference(), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    # Operators keep their LiveKit credentials in .env.local, as for the agent.
    load_dotenv(".env.local", override=False)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING)
    mask_log_handlers()  # the guardian's log lines name rooms, which carry numbers
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
