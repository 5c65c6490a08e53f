"""`switchboard check` and `switchboard route`: the CLI face of the route table.

`check` validates routes.toml and the prompts it names; `route` answers "which route
would this caller get, and why?" without a call. Exit codes: 0 ok, 1 the route table is
invalid, 2 a problem with the command line itself (missing file, malformed --attr).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TypeAlias, get_args

from switchboard.caller import CallerKind, caller_from_participant
from switchboard.cli.errors import config_failed
from switchboard.config.errors import NOT_THERE, ConfigError, Problem, collect, missing_fix
from switchboard.config.pins import weak_pins
from switchboard.config.policy import load_policy, loop_problems, policy_problems
from switchboard.config.routes import load_routes
from switchboard.config.settings import read_one
from switchboard.routing import RouteDecision, RouteTable, route_for
from switchboard.safe_text import printable, safe_json, shown, shown_lines
from switchboard.telephony.config import line_numbers

SUBJECT = "the routes and the dial-out policy"

# A string: _SubParsersAction is generic only to type checkers, not at run time.
Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers) -> None:
    add_check_parser(subparsers)
    add_route_parser(subparsers)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--routes", type=Path, help="the route table (default: SWITCHBOARD_ROUTES, routes.toml)"
    )
    p.add_argument("--prompts", type=Path, help="prompts folder (default: the shipped one)")


def add_check_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "check",
        help="validate routes.toml, the prompts it names and policy.toml",
        description="Check every route: keys, types, numbers, regions, tools, prompt files, "
        "the default route, and routes an earlier route makes unreachable; and the dial-out "
        "policy file the routes name. Every problem of both files is listed in one report.",
    )
    _common(p)
    p.add_argument(
        "--policy",
        type=Path,
        help="the dial-out policy file the routes name (default: SWITCHBOARD_POLICY, policy.toml)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--telephony",
        type=Path,
        help="telephony.toml: its numbers are the line's own, never dialled "
        "(default: SWITCHBOARD_TELEPHONY, telephony.toml; a missing file is skipped)",
    )
    p.set_defaults(func=run_check)


def add_route_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "route",
        help="show which route a caller would get, and why",
        description="Build a caller from a kind and participant attributes, as the agent "
        "does when a call starts, and print the route the table picks for it.",
    )
    p.add_argument("--kind", default="sip", choices=get_args(CallerKind), help="default: sip")
    p.add_argument("--identity", default="cli-caller", help="participant identity")
    p.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a participant attribute, e.g. sip.phoneNumber=+442071234567 (repeatable)",
    )
    p.add_argument(
        "--directory",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a field of the caller's directory entry, e.g. tier=vip (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="print the decision as JSON")
    _common(p)
    p.set_defaults(func=run_route)


def _path(given: Path | None, variable: str) -> Path:
    """The file the command line names, else the one the worker would read."""
    return given if given is not None else Path(read_one(variable, os.environ))


def _prompts(args: argparse.Namespace) -> Path | int:
    folder: Path = args.prompts or read_one("SWITCHBOARD_PROMPTS_DIR", os.environ)
    if not folder.is_dir():
        print(
            f"error: prompts folder {shown(folder)} not found; pass --prompts DIR", file=sys.stderr
        )
        return 2
    return folder


def _load(args: argparse.Namespace) -> RouteTable | int:
    """The table, or the exit code after printing why there is none."""
    folder = _prompts(args)
    if isinstance(folder, int):
        return folder
    path = _path(args.routes, "SWITCHBOARD_ROUTES")
    try:
        return load_routes(path, folder)
    except FileNotFoundError:
        fix = missing_fix("SWITCHBOARD_ROUTES", "--routes")
        print(f"error: {Problem(str(path), '', None, NOT_THERE, fix)}", file=sys.stderr)
        return 2
    except ConfigError as e:
        return config_failed(e, 1)


def run_check(args: argparse.Namespace) -> int:
    folder = _prompts(args)
    if isinstance(folder, int):
        return folder
    routes_path = _path(args.routes, "SWITCHBOARD_ROUTES")
    policy_path = _path(args.policy, "SWITCHBOARD_POLICY")
    # Both files are read whatever the other holds: one run shows every problem.
    problems: list[Problem] = []
    routes_fix = missing_fix("SWITCHBOARD_ROUTES", "--routes")
    table = collect(lambda: load_routes(routes_path, folder), problems, routes_fix)
    policy_fix = missing_fix("SWITCHBOARD_POLICY", "--policy")
    region = read_one("SWITCHBOARD_DEFAULT_REGION", os.environ)
    policy = collect(lambda: load_policy(policy_path, (region,)), problems, policy_fix)
    if policy is not None:
        telephony = args.telephony or read_one("SWITCHBOARD_TELEPHONY", os.environ)
        problems += loop_problems(policy, line_numbers(telephony, os.environ))
    if table is not None and policy is not None:
        problems += policy_problems(table, policy)
    # The environment's PINs (and .env.local's): warnings, not errors.
    warnings = weak_pins(table, os.environ) if table is not None else []
    count = len(table.routes) if table is not None else 0
    if args.json:
        document = {
            "ok": not problems,
            "routes": str(routes_path),
            "policy": str(policy_path),
            "route_count": count,
            "problems": [problem_json(p) for p in problems],
            "warnings": [problem_json(w) for w in warnings],
        }
        print(safe_json(document, indent=2))
    else:
        for warning in warnings:
            print(f"warning: {shown_lines(warning)}", file=sys.stderr)
        if problems:
            print(f"error: {shown_lines(ConfigError(problems, SUBJECT))}", file=sys.stderr)
        else:
            routes, policy_file = shown(routes_path), shown(policy_path)
            print(f"{routes}: {count} route{'' if count == 1 else 's'} OK; {policy_file} OK")
    if any(p.problem == NOT_THERE for p in problems):
        return 2  # the command line (or the environment) names a file that is not there
    return 1 if problems else 0


def problem_json(problem: Problem) -> dict[str, str | None]:
    return {
        "file": problem.source,
        "where": problem.where or None,
        "field": problem.key,
        "problem": problem.problem,
        "fix": problem.fix,
    }


def parse_pairs(option: str, items: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings to a dict; ValueError says which one is malformed and why."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{option} {item!r}: expected KEY=VALUE, e.g. {option} lang=es")
        if key in pairs:
            raise ValueError(f"{option} {key}: given twice; give each key once")
        pairs[key] = value
    return pairs


def run_route(args: argparse.Namespace) -> int:
    try:
        attributes = parse_pairs("--attr", args.attr)
        directory = parse_pairs("--directory", args.directory)
    except ValueError as e:
        print(f"error: {shown(e)}", file=sys.stderr)
        return 2
    table = _load(args)
    if isinstance(table, int):
        return table
    count = len(table.routes)
    caller = caller_from_participant(args.kind, args.identity, attributes)
    decision = route_for(caller, table, directory or None)
    summary = describe_decision(decision)
    if args.json:
        print(safe_json({**summary, "of": count, "caller": caller.log_fields()}))
    else:
        del summary["index"]  # shown with the name instead
        del summary["passed_over"]  # the reason says it
        summary["route"] = f"{decision.route.name} (#{decision.index + 1} of {count})"
        width = max(map(len, summary))
        for key, value in summary.items():
            text = ", ".join(value) if isinstance(value, list) else value
            print(f"{key:<{width}}  {'-' if text in (None, '') else printable(text)}")
    return 0


def describe_decision(decision: RouteDecision) -> dict[str, object]:
    """What the decision gives, in display order (also the --json document's keys)."""
    route = decision.route
    return {
        "route": route.name,
        "index": decision.index + 1,  # counted from 1, as the table shows it: "#2 of 2"
        "reason": decision.reason,
        "passed_over": list(decision.passed_over),
        "stt_model": decision.stt_model,
        "stt_model_from": "route" if route.stt_model else "automatic (kind and language)",
        "language": route.language,
        "prompt": route.prompt,
        "greeting": route.greeting,
        "tools": list(route.tools),
        "dial_policy": route.dial_policy,
        "transfer_destinations": list(route.transfer_destinations),
    }
