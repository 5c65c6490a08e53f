"""`python -m lab up|down|env`: the lab for `make lab-up` / `make lab-down`."""

from __future__ import annotations

import argparse
import sys

from lab.procs import LabError
from lab.stack import Lab


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m lab")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--agent-mode", default="dev", choices=["dev", "start", "none"])
    parser.add_argument("--workers", type=int, default=1, help="agent workers (default: 1)")
    parser.add_argument(
        "--guardian", action="store_true", help="also run the dispatch guardian (and webhooks)"
    )
    parser.add_argument(
        "--nodes",
        type=int,
        default=1,
        help="livekit-server nodes sharing the lab's Redis (default: 1)",
    )
    args = parser.parse_args()
    lab = Lab()
    if args.command == "down":
        stopped = lab.down()
        print("lab: stopped " + (", ".join(stopped) if stopped else "nothing (no lab running)"))
        return 0
    try:
        env = lab.up(
            agent_mode=None if args.agent_mode == "none" else args.agent_mode,
            workers=args.workers,
            guardian=args.guardian,
            nodes=args.nodes,
        )
    except LabError as e:
        print(f"lab: {e}", file=sys.stderr)
        return 1
    print(f"lab: up; wrote {lab.c.env_file}")
    for key, value in env.items():
        print(f"  {key}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
