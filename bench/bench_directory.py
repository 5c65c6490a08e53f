"""`python -m bench.bench_directory`: the caller directory and call records, both backends.

For SQLite (a temporary file) and PostgreSQL (a throwaway local server, lab/testing/postgres.py):
imports N contacts from a CSV file (then again: every row an update), times random
lookups (half hits, half misses) and the record writes of calls with a 20-turn
transcript. Prints a table and writes bench/out/directory.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.stats import percentile
from switchboard.data.db import Database, open_database
from switchboard.data.directory.store import import_csv, lookup
from switchboard.data.records.model import StatusChange, ToolCall, Turn
from switchboard.data.records.recorder import CallRecorder

OUT = Path(__file__).resolve().parent / "out"


def write_contacts(path: Path, n: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        f.write("number,name,account_id,tier,language,notes,segment\n")
        for i in range(n):
            tier = ("gold", "silver", "bronze")[i % 3]
            f.write(f"+44 7700 {i:06d},Customer {i},ACC-{i},{tier},en-GB,note {i},s{i % 7}\n")


def stats_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1000, 2),
        "p99_ms": round(percentile(values, 99) * 1000, 2),
        "max_ms": round(max(values) * 1000, 2),
    }


async def bench_lookups(db: Database, n_contacts: int, n: int) -> dict[str, Any]:
    rng = random.Random(7)
    times: list[float] = []
    statuses: dict[str, int] = {}
    for i in range(n):
        k = rng.randrange(n_contacts)
        number = f"+447700{k:06d}" if i % 2 == 0 else f"+447800{k:06d}"  # hit / miss
        started = time.perf_counter()
        result = await lookup(db, number)
        times.append(time.perf_counter() - started)
        statuses[result.status] = statuses.get(result.status, 0) + 1
    return {**stats_ms(times), "statuses": statuses}


async def bench_records(db: Database, n: int) -> dict[str, Any]:
    start_t: list[float] = []
    finish_t: list[float] = []
    for i in range(n):
        recorder = CallRecorder(db, heartbeat_s=None)
        t0 = time.perf_counter()
        await recorder.start(
            call_id=f"bench-{i}", room=f"room-{i}", route="support",
            caller_number="+442071234567", called_number="+15105550100",
            providers={"stt": "deepgram/nova-3", "llm": "openai/gpt-4.1-mini"},
        )  # fmt: skip
        t1 = time.perf_counter()
        recorder.add_status(StatusChange("active", recorder.now()))
        for turn in range(20):
            role = "assistant" if turn % 2 == 0 else "user"
            recorder.add_turn(Turn(role, f"turn {turn}: " + "words " * 12, recorder.now()))
        recorder.add_tool_call(
            ToolCall("lookup_order", {"order_id": str(i)}, {"status": "shipped"}, recorder.now())
        )
        t2 = time.perf_counter()
        await recorder.finish("CLIENT_INITIATED", usage={"llm_prompt_tokens": 1200})
        t3 = time.perf_counter()
        start_t.append(t1 - t0)
        finish_t.append(t3 - t2)
    both = [a + b for a, b in zip(start_t, finish_t, strict=True)]
    return {"start": stats_ms(start_t), "finish": stats_ms(finish_t), "both": stats_ms(both)}


async def bench_backend(url: str, csv_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    db = await open_database(url)
    try:
        first = await import_csv(db, csv_path, on_error="refuse")
        again = await import_csv(db, csv_path, on_error="refuse")
        assert first.inserted == args.contacts and again.updated == args.contacts
        return {
            "import_s": round(first.elapsed_s, 2),
            "reimport_s": round(again.elapsed_s, 2),
            "lookup": await bench_lookups(db, args.contacts, args.lookups),
            "record": await bench_records(db, args.calls),
        }
    finally:
        await db.close()


@contextmanager
def postgres_url() -> Iterator[tuple[str, str]]:
    from lab.testing.postgres import postgres  # the test helper: a throwaway server on 127.0.0.1

    with postgres() as server:
        version = server.bin_dir.parent.name
        yield server.create_database("bench"), version


def print_table(results: dict[str, dict[str, Any]], contacts: int) -> None:
    print(f"\ncaller directory, {contacts:,} contacts")
    print(f"{'':24}" + "".join(f"{name:>14}" for name in results))
    rows: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
        ("import (s)", lambda r: r["import_s"]),
        ("re-import, updates (s)", lambda r: r["reimport_s"]),
        ("lookup p50 (ms)", lambda r: r["lookup"]["p50_ms"]),
        ("lookup p99 (ms)", lambda r: r["lookup"]["p99_ms"]),
        ("lookup max (ms)", lambda r: r["lookup"]["max_ms"]),
        ("record start p50 (ms)", lambda r: r["record"]["start"]["p50_ms"]),
        ("record finish p50 (ms)", lambda r: r["record"]["finish"]["p50_ms"]),
        ("start+finish p50 (ms)", lambda r: r["record"]["both"]["p50_ms"]),
        ("start+finish p99 (ms)", lambda r: r["record"]["both"]["p99_ms"]),
    ]
    for label, get in rows:
        print(f"{label:24}" + "".join(f"{get(r):>14}" for r in results.values()))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="switchboard-bench-") as tmp:
        csv_path = Path(tmp) / "contacts.csv"
        write_contacts(csv_path, args.contacts)
        results["sqlite"] = await bench_backend(f"sqlite:///{tmp}/bench.db", csv_path, args)
        with postgres_url() as (url, version):
            results[f"postgresql {version}"] = await bench_backend(url, csv_path, args)
    print_table(results, args.contacts)
    return {
        "contacts": args.contacts,
        "lookups": args.lookups,
        "calls": args.calls,
        "transcript_turns": 20,
        "lookup_budget_s": 0.15,
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "cpus": os.cpu_count(),
        },
        "results": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=2_000)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    report = asyncio.run(run(args))
    OUT.mkdir(exist_ok=True)
    (OUT / "directory.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwritten to {OUT / 'directory.json'}")


if __name__ == "__main__":
    main()
