"""Caller directory on SQLite and PostgreSQL: normalisation, lookups within a time budget
(slow, locked, down databases), CSV import (bad rows, duplicates, a large file), schema."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sqlite3
import sys
import time
from asyncio.subprocess import PIPE
from collections.abc import AsyncIterator
from types import MappingProxyType

import asyncpg
import pytest
from hypothesis import given, strategies as st

from switchboard.data.db import Database, migrate, open_database, schema_version
from switchboard.data.directory.entry import (
    DirectoryEntry,
    normalize_language,
)
from switchboard.data.directory.store import forget_reported_failures, lookup, upsert_entries
from switchboard.data.schema import LATEST_VERSION
from switchboard.numbers import (
    InvalidNumberError,
    normalize_number,
)

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

BUDGET = 0.15
MARGIN = 0.25
ALICE = DirectoryEntry(
    number="+442071234567",
    name="Alice Example",
    account_id="ACC-1",
    tier="gold",
    language="en-GB",
    notes="prefers email",
    extra=MappingProxyType({"crm_id": "42"}),
)


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("+44 20 7123 4567", None, "+442071234567"),
        ("+442071234567", None, "+442071234567"),
        ("tel:+1-415-555-2671", None, "+14155552671"),
        ("TEL:+14155552671", None, "+14155552671"),
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "us", "+14155552671"),
        ("020 7123 4567", "GB", "+442071234567"),
        (" +33 1 23 45 67 89 ", None, "+33123456789"),
    ],
)
def test_normalise_accepts_usual_spellings(raw: str, region: str | None, e164: str) -> None:
    assert normalize_number(raw, default_region=region) == e164


@pytest.mark.parametrize(
    "raw",
    [
        "+44 20 7123 4567 OR 1=1",
        "+442071234567'; DROP TABLE directory; --",
        "+4420712\x0034567",
        "+442071234567\n",
        "\u202e+442071234567",
        "sip:+442071234567@example.com",
        "tel:+1415555;phone-context=x",
        "+44 20 7123 4567 ext. 12",
        "++442071234567",
        "4155552671",  # national, no region
        "+1 415",  # too short
        "+999 1234 5678",  # no such country
        "\uff0b\uff14\uff14\uff12\uff10",  # full-width digits
    ],
)
def test_normalise_rejects_malformed_and_injected(raw: str) -> None:
    with pytest.raises(InvalidNumberError):
        normalize_number(raw)


@given(st.text(max_size=40))
def test_normalise_returns_e164_or_refuses(raw: str) -> None:
    try:
        number = normalize_number(raw, default_region="US")
    except InvalidNumberError:
        return
    assert re.fullmatch(r"\+[1-9][0-9]{6,15}", number)


def test_language_tags_are_canonical() -> None:
    assert normalize_language("EN-gb") == "en-GB"
    assert normalize_language("zh-hant-tw") == "zh-Hant-TW"
    with pytest.raises(ValueError):
        normalize_language("english")


async def test_lookup_known_caller(db: Database) -> None:
    await upsert_entries(db, [ALICE])
    result = await lookup(db, "+44 20 7123 4567")
    assert result.status == "found"
    assert result.entry == ALICE
    assert result.number == "+442071234567"
    with pytest.raises(TypeError):
        result.entry.extra["crm_id"] = "x"  # type: ignore[index]


async def test_lookup_national_number_with_region(db: Database) -> None:
    await upsert_entries(db, [ALICE])
    assert (await lookup(db, "020 7123 4567", default_region="GB")).status == "found"


async def test_lookup_unknown_caller(db: Database) -> None:
    await upsert_entries(db, [ALICE])
    result = await lookup(db, "+14155552671")
    assert (result.status, result.entry, result.number) == ("unknown", None, "+14155552671")


@pytest.mark.parametrize("number", [None, "", "  ", "anonymous", "Restricted"])
async def test_lookup_hidden_number(db: Database, number: str | None) -> None:
    assert (await lookup(db, number)).status == "hidden"


@pytest.mark.parametrize("number", ["12", "+999 1234 5678", "4155552671", "not a number"])
async def test_lookup_malformed_number(db: Database, number: str) -> None:
    result = await lookup(db, number)
    assert result.status == "invalid"
    assert result.reason


async def test_lookup_injected_number_is_invalid_and_harmless(db: Database) -> None:
    await upsert_entries(db, [ALICE])
    for raw in ("+442071234567' OR '1'='1", "+442071234567; DELETE FROM directory"):
        assert (await lookup(db, raw)).status == "invalid"
    assert (await lookup(db, ALICE.number)).status == "found"


@contextlib.asynccontextmanager
async def locked_directory(db: Database, url: str) -> AsyncIterator[None]:
    """Another connection holds a lock that blocks reads of the directory."""
    if db.backend == "postgresql":
        conn = await asyncpg.connect(url.replace("postgresql://", "postgres://"))
        try:
            await conn.execute("BEGIN; LOCK TABLE directory IN ACCESS EXCLUSIVE MODE")
            yield
        finally:
            await conn.close()
        return
    # SQLite in WAL mode lets readers through a writer; an exclusive-locking-mode
    # transaction does not. It needs the file to itself: close our idle connections first.
    await db.engine.dispose()
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode=EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE directory SET notes = 'locked'")
        yield
    finally:
        holder.close()


async def test_slow_database_fails_within_budget(db: Database, db_url: str) -> None:
    await upsert_entries(db, [ALICE])
    async with locked_directory(db, db_url):
        started = time.monotonic()
        result = await lookup(db, ALICE.number, timeout_s=BUDGET)
        elapsed = time.monotonic() - started
        assert result.status == "failed"
        assert result.failure in ("timeout", "locked")
        assert result.reason
        if result.failure == "timeout":
            assert "within 0.15 s" in result.reason
        assert elapsed < BUDGET + MARGIN, f"lookup took {elapsed:.3f} s"
    # Once the lock is gone, lookups work again (the late query was abandoned cleanly).
    assert (await lookup(db, ALICE.number, timeout_s=5)).status == "found"


async def test_database_down_fails_fast(down_db: Database) -> None:
    started = time.monotonic()
    result = await lookup(down_db, ALICE.number, timeout_s=BUDGET)
    elapsed = time.monotonic() - started
    assert result.status == "failed"
    # "timeout" only if this machine is too loaded to even fail within the budget.
    assert result.failure in ("unreachable", "timeout"), result.reason
    assert elapsed < BUDGET + MARGIN


async def test_database_down_is_logged_once_per_reason(
    down_db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    forget_reported_failures()
    with caplog.at_level(logging.WARNING, logger="switchboard.directory"):
        # A budget long enough that the failure is the database's, not the clock's.
        first = await lookup(down_db, ALICE.number, timeout_s=10)
        second = await lookup(down_db, "+14155552671", timeout_s=10)
    assert (first.status, first.failure) == ("failed", "unreachable"), first.reason
    assert (second.status, second.failure) == ("failed", "unreachable"), second.reason
    warnings = [r for r in caplog.records if r.name == "switchboard.directory"]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    message = warnings[0].getMessage()
    assert "unreachable" in message
    assert "+4420••••4567" in message and ALICE.number not in message


async def test_migrations_are_idempotent(db: Database) -> None:
    assert await schema_version(db) == LATEST_VERSION
    assert await migrate(db) == LATEST_VERSION
    assert await migrate(db) == LATEST_VERSION


async def test_two_processes_migrating_at_once(db_url: str) -> None:
    # Separate engines are separate connections, as two worker processes would have.
    opened = await asyncio.gather(*(open_database(db_url) for _ in range(4)))
    try:
        assert {await schema_version(d) for d in opened} == {LATEST_VERSION}
        await upsert_entries(opened[0], [ALICE])
        assert (await lookup(opened[1], ALICE.number)).status == "found"
    finally:
        await asyncio.gather(*(d.close() for d in opened))


async def test_two_real_processes_migrating_at_once(db_url: str) -> None:
    code = (
        "import asyncio, sys\n"
        "from switchboard.data.db import open_database, schema_version\n"
        "async def main():\n"
        "    db = await open_database(sys.argv[1])\n"
        "    print(await schema_version(db))\n"
        "    await db.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", code, db_url, stdout=PIPE, stderr=PIPE
        )
        for _ in range(3)
    ]
    outputs = await asyncio.wait_for(asyncio.gather(*(p.communicate() for p in procs)), 60)
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == str(LATEST_VERSION)


async def test_newer_schema_is_refused(db: Database, db_url: str) -> None:
    async with db.write() as conn:
        await conn.exec_driver_sql(
            "INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 0)"
        )
    with pytest.raises(RuntimeError, match="newer than this switchboard"):
        await open_database(db_url)
