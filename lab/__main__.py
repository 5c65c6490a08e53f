"""`python -m lab up|down|call|env`: the lab for `make lab-up` / `make lab-down`.

- ``up [--ai]``: the servers and the keyless worker (``--ai``: also the worker of
  LAB_AI_NUMBER, its AI the OpenAI-compatible test double); writes the lab's env file.
- ``call NUMBER [--header X-Name=value] [--dtmf DIGITS]``: one call from a sipp phone,
  then what happened (run it inside the lab's namespace, like ``up``).
- ``env``: the lab's env file as ``export`` lines: ``eval "$(python -m lab env)"`` points
  ``switchboard calls`` (DATABASE_URL) and the other commands at the lab.
- ``down``: stops exactly what ``up`` started.
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from lab.phone import place_call
from lab.procs import LabError
from lab.report import RECORD_WAIT_S, caller_event, events, record_line, report, wait_for_record
from lab.stack import Lab

# Numbers shown only when their worker runs (nothing answers them otherwise): the AI
# worker's with --ai; the tests and benchmarks start the others' for themselves.
AI_KEYS = ("LAB_AI_NUMBER", "LAB_AI_AGENT_NAME")
TEST_ONLY_KEYS = (
    "LAB_REFERENCE_NUMBER",
    "LAB_REFERENCE_AGENT_NAME",
    "LAB_GUARDED_NUMBER",
    "LAB_GUARDED_AGENT_NAME",
    "LAB_MENU_NUMBER",
    "LAB_MENU_AGENT_NAME",
)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m lab")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the lab")
    # start, not dev: its job processes are warm before the lab says it is up, so the
    # first call does not wait for them (dev starts one per call, seconds on a busy host).
    up.add_argument("--agent-mode", default="start", choices=["dev", "start", "none"])
    up.add_argument("--workers", type=int, default=1, help="agent workers (default: 1)")
    up.add_argument(
        "--guardian", action="store_true", help="also run the dispatch guardian (and webhooks)"
    )
    up.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="livekit-server nodes sharing the lab's Redis (default: 1)",
    )
    up.add_argument(
        "--ai",
        action="store_true",
        help="also run the worker of LAB_AI_NUMBER (its AI: the test double)",
    )
    commands.add_parser("down", help="stop what `up` started")
    commands.add_parser("env", help="the lab's env file as export lines")
    call = commands.add_parser("call", help="place one call and say what happened")
    call.add_argument("number", help="the number to call, e.g. +15105550100")
    call.add_argument("--from", dest="caller", default="+442071234567", help="caller number")
    call.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="X-NAME=VALUE",
        help="an X-* SIP header to send (repeatable)",
    )
    call.add_argument("--dtmf", help="keys to press once answered, e.g. 1234#")
    call.add_argument(
        "--hang-up-after",
        type=float,
        metavar="SECONDS",
        help="hang up this long after the agent is first heard (default: wait for the agent)",
    )
    call.add_argument("--timeout", type=float, default=60, help="give up after (default: 60 s)")
    args = parser.parse_args()
    lab = Lab()
    try:
        if args.command == "down":
            stopped = lab.down()
            print("lab: stopped " + (", ".join(stopped) if stopped else "nothing (no lab running)"))
            return 0
        if args.command == "env":
            return _env(lab)
        if args.command == "call":
            return _call(lab, args)
        return _up(lab, args)
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1


def _up(lab: Lab, args: argparse.Namespace) -> int:
    mode = None if args.agent_mode == "none" else args.agent_mode
    env = lab.up(agent_mode=mode, workers=args.workers, guardian=args.guardian, nodes=args.nodes)
    if args.ai:
        try:
            lab.start_ai(env)
        except BaseException:
            lab.down()
            raise
    print(f"lab: up; wrote {lab.c.env_file}")
    for key, value in env.items():
        if key not in TEST_ONLY_KEYS and (args.ai or key not in AI_KEYS):
            print(f"  {key}={value}")
    print(
        "lab: call it with `lab/netns.sh exec .venv/bin/python -m lab call "
        f"{env['LAB_INBOUND_NUMBER']}`"
        + (f" (or {env['LAB_AI_NUMBER']}, the AI worker)" if args.ai else "")
        + '; its calls: `eval "$(.venv/bin/python -m lab env)"; .venv/bin/switchboard calls`'
    )
    return 0


def _lab_env(lab: Lab, *, running: bool = True) -> dict[str, str]:
    path = lab.c.env_file
    if (running and not lab.procs.running()) or not path.exists():
        raise LabError("no lab is running: start one with `make lab-up`")
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _env(lab: Lab) -> int:
    # Also after the lab has stopped (`make demo`): its records outlive it.
    for key, value in _lab_env(lab, running=False).items():
        print(f"export {key}={shlex.quote(value)}")
    if not lab.procs.running():
        print("lab: not running; its records are still where DATABASE_URL says", file=sys.stderr)
    return 0


def _call(lab: Lab, args: argparse.Namespace) -> int:
    env = _lab_env(lab)
    headers = {}
    for header in args.header:
        name, sep, value = header.partition("=")
        if not sep or not name.lower().startswith("x-"):
            raise LabError(f"--header {header!r}: give it as X-Name=value")
        headers[name] = value
    print(f"lab: calling {args.number} from {args.caller} with sipp...")
    try:
        result = asyncio.run(
            place_call(
                sip_host=env["SIP_HOST"],
                sip_port=int(env["SIP_PORT"]),
                to_number=args.number,
                from_number=args.caller,
                headers=headers,
                local_ip=env["LAB_PHONE_IP"],
                send_dtmf=args.dtmf,
                hangup="remote" if args.hang_up_after is None else args.hang_up_after,
                timeout=args.timeout,
            )
        )
    except ValueError as e:  # a number, header or key the phone refuses to send
        raise LabError(str(e)) from None
    events_file = lab.c.events_file
    caller = caller_event(events_file, result)
    print(report(result, events(events_file, caller["job_id"]) if caller else []))
    if caller is not None:
        seen = wait_for_record(lab.c.database_url, caller["caller"]["call_id"], RECORD_WAIT_S)
        print(record_line(asyncio.run(seen)))
    elif result.answered:
        print("record          : no agent reported this call (see the lab's logs)")
    if not result.answered:
        print(f"\nlab: the call was not answered (SIP {result.final_status}); sipp said:")
        print(result.sipp_log_tail)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
