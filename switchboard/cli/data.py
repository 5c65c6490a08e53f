"""`switchboard directory` and `switchboard calls`: the caller directory and the call records.

Both use the database named by ``DATABASE_URL`` (default: SQLite in
``SWITCHBOARD_STATE_DIR`` or ``./.switchboard``), creating or migrating its schema.
Exit codes: 0 success; 1 the data says no (rows refused, number not in the directory, no
such call, database unreachable); 2 something to fix locally (bad DATABASE_URL, unreadable
file, invalid number). Phone numbers are masked in the output unless ``--unmasked``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TypeAlias

from sqlalchemy.exc import SQLAlchemyError

from switchboard.cli import formats as fmt
from switchboard.cli.errors import config_failed
from switchboard.config.errors import ConfigError
from switchboard.config.settings import database_url
from switchboard.data.db import Database, DatabaseError, async_url, open_database
from switchboard.data.directory.csv_import import CsvFileError
from switchboard.data.directory.store import classify_failure, import_csv, lookup
from switchboard.data.records.latency import interrupted_replies, turn_latency
from switchboard.data.records.query import recent_calls
from switchboard.data.records.recorder import get_call, list_calls
from switchboard.numbers import check_region
from switchboard.safe_text import printable, safe_json, shown as shown_text

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
_EXIT = {"found": 0, "unknown": 1, "failed": 1, "hidden": 2, "invalid": 2}


def add_parser(subparsers: Subparsers) -> None:
    _add_directory(subparsers)
    _add_calls(subparsers)
    _add_stats(subparsers)


def _add_stats(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "stats",
        help="turn latency percentiles over the recent calls",
        description=(
            "Percentiles of each turn's latency (end of turn, transcription, LLM first "
            "token, voice first audio, end to end) over the latest calls' records. "
            "Uses DATABASE_URL."
        ),
    )
    p.add_argument("--calls", type=int, default=50, help="recent calls (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.set_defaults(func=run_stats)


def _add_directory(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "directory",
        help="import and look up known callers (the caller directory)",
        description="The caller directory, keyed by E.164 number. Uses DATABASE_URL.",
    )
    actions = p.add_subparsers(dest="directory_action", required=True, metavar="ACTION")
    imp = actions.add_parser(
        "import",
        help="upsert contacts from a CSV file",
        description=(
            "Columns: number,name,account_id,tier,language,notes; other columns go to the "
            "entry's extra fields. Existing numbers are updated. A number repeated in the "
            "file: the last row wins (reported). Exit 1 if the import was refused."
        ),
    )
    imp.add_argument("file", help="CSV file, UTF-8, with a header line")
    imp.add_argument(
        "--on-error",
        choices=["refuse", "skip"],
        default="refuse",
        help="a bad row: refuse the whole file (default) or skip the row",
    )
    imp.add_argument("--region", type=_region, help="country of national numbers, e.g. US")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.set_defaults(func=run_import)
    show = actions.add_parser("show", help="look a number up", description="Look a number up.")
    show.add_argument("number", help="e.g. +442071234567, tel:+1..., or national with --region")
    show.add_argument("--region", type=_region, help="country of a national number, e.g. US")
    show.add_argument("--unmasked", action="store_true", help="print the full number")
    show.add_argument("--json", action="store_true", help="print the result as JSON")
    show.set_defaults(func=run_show)


def _add_calls(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "calls",
        help="list recorded calls, or show one call's timeline and transcript",
        description=(
            "Recorded calls, newest first; `calls show CALL_ID` prints one call's timeline "
            "and transcript. A call not complete whose worker stopped refreshing it is "
            "listed as incomplete. Uses DATABASE_URL."
        ),
    )
    p.add_argument("--limit", type=int, default=20, help="default: %(default)s")
    p.add_argument("--json", action="store_true", help="JSON instead of a table")
    p.add_argument("--unmasked", action="store_true", help="full numbers (if stored)")
    p.set_defaults(func=run_calls)
    actions = p.add_subparsers(dest="calls_action", metavar="ACTION")
    show = actions.add_parser("show", help="one call: timeline and transcript")
    show.add_argument("call_id")
    # SUPPRESS: without the flag here, keep the value given before "show".
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    show.add_argument("--unmasked", action="store_true", default=argparse.SUPPRESS)
    show.set_defaults(func=run_call_show)


def _region(raw: str) -> str:
    try:
        return check_region(raw)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def run_import(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        try:
            report = await import_csv(
                db, args.file, on_error=args.on_error, default_region=args.region
            )
        except CsvFileError as e:
            print(f"error: {printable(args.file)}: {printable(e)}", file=sys.stderr)
            return 2
        if args.json:
            print(safe_json(fmt.import_json(report), indent=2))
        else:
            print(fmt.import_report(report))
        return 1 if report.refused else 0

    return _with_database(work)


def run_show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        # An operator can wait longer than a ringing call.
        result = await lookup(db, args.number, timeout_s=10.0, default_region=args.region)
        if args.json:
            document = fmt.directory_json(result, unmasked=args.unmasked)
            print(safe_json(document, indent=2))
        else:
            print(fmt.directory_result(result, query=args.number, unmasked=args.unmasked))
        return _EXIT[result.status]

    return _with_database(work)


def run_calls(args: argparse.Namespace) -> int:
    if args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2

    async def work(db: Database) -> int:
        summaries = await list_calls(db, limit=args.limit)
        if args.json:
            print(
                safe_json(
                    [fmt.summary_json(c, unmasked=args.unmasked) for c in summaries], indent=2
                )
            )
        else:
            print(fmt.calls_table(summaries, unmasked=args.unmasked))
        return 0

    return _with_database(work)


def run_call_show(args: argparse.Namespace) -> int:
    async def work(db: Database) -> int:
        record = await get_call(db, args.call_id)
        if record is None:
            print(f"error: no call {printable(args.call_id)!r} recorded", file=sys.stderr)
            return 1
        if args.json:
            print(safe_json(fmt.record_json(record, unmasked=args.unmasked), indent=2))
        else:
            print(fmt.call_details(record, unmasked=args.unmasked))
        return 0

    return _with_database(work)


def run_stats(args: argparse.Namespace) -> int:
    if args.calls < 1:
        print("error: --calls must be at least 1", file=sys.stderr)
        return 2

    async def work(db: Database) -> int:
        records = await recent_calls(db, limit=args.calls)
        stats, cut = turn_latency(records), interrupted_replies(records)
        if args.json:
            print(safe_json(fmt.stats_json(len(records), stats, cut), indent=2))
        else:
            print(fmt.stats_table(len(records), stats, cut))
        return 0

    return _with_database(work)


def _with_database(work: Callable[[Database], Awaitable[int]]) -> int:
    """Open the database, run ``work``, close; errors become a message and an exit code."""
    try:
        url = database_url(os.environ)
        shown = shown_text(async_url(url).render_as_string(hide_password=True))
    except ConfigError as e:
        return config_failed(e)

    async def main() -> int:
        try:
            db = await open_database(url)
        except (OSError, SQLAlchemyError, DatabaseError) as e:
            reason = str(e) if isinstance(e, DatabaseError) else classify_failure(e)[1]
            reason = shown_text(reason)
            print(f"error: cannot open the database {shown}: {reason}", file=sys.stderr)
            return 1
        try:
            return await work(db)
        except (OSError, SQLAlchemyError) as e:
            reason = shown_text(classify_failure(e)[1])
            print(f"error: database {shown}: {reason}", file=sys.stderr)
            return 1
        finally:
            await db.close()

    return asyncio.run(main())
