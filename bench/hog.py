"""`python -m bench.hog [--cores N] [--seconds S] -- COMMAND...`: run COMMAND while busy loops
take N cores (default 1), as a neighbour would on a shared machine.

The loops stop when the command ends, and after ``--seconds`` in any case (bounded).
Exits with the command's status; prints the load average before and after.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time


def _spin(until: float) -> None:
    while time.monotonic() < until:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.hog")
    parser.add_argument("--cores", type=int, default=1, help="busy loops to run")
    parser.add_argument("--seconds", type=float, default=900.0, help="upper bound on the loops")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    until = time.monotonic() + args.seconds
    hogs = [mp.Process(target=_spin, args=(until,), daemon=True) for _ in range(args.cores)]
    print(f"hog: {args.cores} busy core(s); load average {os.getloadavg()}", file=sys.stderr)
    for hog in hogs:
        hog.start()
    try:
        return subprocess.call(command)
    finally:
        for hog in hogs:
            hog.terminate()
            hog.join(5)
        print(f"hog: stopped; load average {os.getloadavg()}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
