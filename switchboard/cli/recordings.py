"""`switchboard recordings prune`: delete call recordings past their retention.

Retention is ``SWITCHBOARD_RECORDINGS_RETENTION_DAYS`` (or ``--days``), counted from when a
file was last written (the end of its call). The worker does the same once a day. Exit 0
when every expired recording was deleted, 1 when some could not be, 2 for a bad setting.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import TypeAlias

from switchboard.cli.errors import config_failed
from switchboard.config.errors import ConfigError
from switchboard.config.settings import load_settings, recordings_folder
from switchboard.data.recordings import prune

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "recordings",
        help="call recordings: delete those past their retention",
        description="Call recordings in SWITCHBOARD_RECORDINGS_DIR.",
    )
    actions = p.add_subparsers(dest="recordings_action", required=True, metavar="ACTION")
    run = actions.add_parser(
        "prune",
        help="delete recordings older than the retention period",
        description="Delete recordings last written more than the retention period ago.",
    )
    run.add_argument("--days", type=_days, help="retention in days (default: the setting)")
    run.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    run.set_defaults(func=run_prune)


def _days(raw: str) -> int:
    try:
        days = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a whole number of days") from None
    if not 1 <= days <= 3650:
        raise argparse.ArgumentTypeError("must be between 1 and 3650 days")
    return days


def run_prune(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ, need_server=False)
    except ConfigError as e:
        return config_failed(e)
    folder = recordings_folder(settings.data, settings.recording)
    days = args.days or settings.recording.retention_days
    done = prune(folder, days, time.time(), dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for name in done.deleted:
        print(f"{verb} {name}")
    for name in done.failed:
        print(f"could not delete {name}")
    print(
        f"{len(done.deleted)} {verb}, {done.kept} kept (retention {days} days) in {folder}",
    )
    return 1 if done.failed else 0
