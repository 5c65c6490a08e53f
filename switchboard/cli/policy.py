"""`switchboard dial-check`: would the agent dial this, and what would the caller hear?

Runs the same ``decide`` the dial-out and transfer tools run, with no prior dials, so an
operator can test policy.toml without a call. Exit codes: 0 allowed, 1 refused, 2 a
problem with the command line or the policy file.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TypeAlias

from switchboard.cli.errors import config_failed
from switchboard.config.errors import NOT_THERE, ConfigError, Problem, missing_fix
from switchboard.config.policy import (
    DEFAULT_POLICY,
    PolicyConfig,
    load_policy,
    with_own_numbers,
)
from switchboard.config.routes import load_routes
from switchboard.config.settings import read_one
from switchboard.dialing.policy import Decision, DialRequest, Dictated, Named, PriorDials, decide
from switchboard.dialing.reason_words import REASON_WORDS
from switchboard.safe_text import safe_json, shown
from switchboard.telephony.config import line_numbers

# A string: _SubParsersAction is generic only to type checkers, not at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "dial-check",
        help="show whether a number or named destination would be dialled, and why",
        description="Decide one dial as the agent's tools would, with no earlier dials: "
        "allowed or refused, the reason, and what the caller would hear. A value that is "
        "the name of a [destinations.NAME] table is that destination; anything else is a "
        "number as a caller would dictate it.",
    )
    p.add_argument("target", metavar="NUMBER_OR_NAME", help='e.g. "+1 510 555 0100" or sales')
    p.add_argument("--policy", type=Path, help="default: SWITCHBOARD_POLICY, else policy.toml")
    p.add_argument(
        "--policy-name", help="a [dial_policy.NAME] (default: the only one, else 'default')"
    )
    p.add_argument(
        "--route", help="use the dial_policy of this route in --routes (instead of --policy-name)"
    )
    p.add_argument("--routes", type=Path, help="default: SWITCHBOARD_ROUTES, else routes.toml")
    p.add_argument(
        "--telephony",
        type=Path,
        help="telephony.toml, whose numbers are refused as loops "
        "(default: SWITCHBOARD_TELEPHONY, telephony.toml; a missing file is skipped)",
    )
    p.add_argument("--caller", help="the caller's number, e.g. +15105550123 (hidden if unset)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    p.set_defaults(func=run_dial_check)


def run_dial_check(args: argparse.Namespace) -> int:
    args.policy = args.policy or Path(read_one("SWITCHBOARD_POLICY", os.environ))
    args.routes = args.routes or Path(read_one("SWITCHBOARD_ROUTES", os.environ))
    try:
        region = read_one("SWITCHBOARD_DEFAULT_REGION", os.environ)
        telephony = args.telephony or read_one("SWITCHBOARD_TELEPHONY", os.environ)
        config = load_policy(args.policy, (region,))
    except FileNotFoundError:
        fix = missing_fix("SWITCHBOARD_POLICY", "--policy")
        print(f"error: {Problem(str(args.policy), '', None, NOT_THERE, fix)}", file=sys.stderr)
        return 2
    except ConfigError as e:
        return config_failed(e)
    config = with_own_numbers(config, line_numbers(telephony, os.environ))
    name = args.policy_name or _default_name(config)
    if args.route:
        try:
            table = load_routes(args.routes)
        except FileNotFoundError:
            fix = missing_fix("SWITCHBOARD_ROUTES", "--routes")
            print(f"error: {Problem(str(args.routes), '', None, NOT_THERE, fix)}", file=sys.stderr)
            return 2
        except ConfigError as e:
            return config_failed(e)
        route = next((r for r in table.routes if r.name == args.route), None)
        if route is None:
            known = ", ".join(r.name for r in table.routes)
            message = shown(f"error: no route {args.route!r} in {args.routes}; known: {known}")
            print(message, file=sys.stderr)
            return 2
        name = route.dial_policy or DEFAULT_POLICY
    policy = config.policies.get(name or "")
    if policy is None:
        known = ", ".join(config.policies) or "none"
        message = f"error: no [dial_policy.{name}] in {args.policy}; known: {known}"
        print(shown(message), file=sys.stderr)
        return 2
    target = Named(args.target) if args.target in config.destinations else Dictated(args.target)
    request = DialRequest(target, args.caller, call_id="dial-check")
    decision = decide(request, policy, config.destinations, PriorDials(), time.time())
    summary = describe(decision, policy.name)
    if args.json:
        print(safe_json({**summary, "log": dict(decision.log)}))
    else:
        summary["reason"] = summary.pop("why")  # words for the reader, the code for scripts
        width = max(map(len, summary))
        for key, value in summary.items():
            print(f"{key:<{width}}  {'-' if value in (None, '') else shown(value)}")
    return 0 if decision.allowed else 1


def _default_name(config: PolicyConfig) -> str | None:
    if len(config.policies) == 1:
        return next(iter(config.policies))
    return "default"


def describe(decision: Decision, policy_name: str) -> dict[str, object]:
    """What the operator is shown, in display order (also the --json document's keys)."""
    return {
        "decision": "allowed" if decision.allowed else "refused",
        # The code for scripts, and what it means for the operator reading it.
        "reason": decision.reason.name if decision.reason else None,
        "why": REASON_WORDS[decision.reason] if decision.reason else None,
        "policy": policy_name,
        "dial": decision.target,  # the operator's own terminal: shown unmasked
        "dtmf": decision.dtmf,
        "warm": decision.warm if decision.allowed else None,
        "caller_hears": decision.spoken,
    }
