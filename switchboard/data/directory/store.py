"""The caller directory: who is calling, looked up by number within a time budget; CSV import.

``lookup`` is on the call path, so it never raises and never waits past its budget: a
slow, locked or unreachable database gives a "failed" result with the reason, and the
call goes on without caller details. Each distinct failure is logged once per process
(a database that is down would otherwise log on every call), numbers always masked.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import select

from switchboard.data.db import Database
from switchboard.data.directory.csv_import import (
    CsvFileError,
    Duplicate,
    ParsedFile,
    RowProblem,
    parse_csv,
)
from switchboard.data.directory.entry import (
    DirectoryEntry,
)
from switchboard.data.schema import directory
from switchboard.numbers import (
    InvalidNumberError,
    is_withheld,
    mask_number,
    normalize_number,
)

logger = logging.getLogger("switchboard.directory")

LookupStatus = Literal["found", "unknown", "hidden", "invalid", "failed"]
FailureKind = Literal["timeout", "locked", "unreachable", "error"]


@dataclass(frozen=True, slots=True)
class DirectoryResult:
    status: LookupStatus
    number: str | None = None  # E.164, when the number was valid
    entry: DirectoryEntry | None = None  # when found
    failure: FailureKind | None = None  # when failed
    reason: str | None = None  # why invalid or failed, for people
    elapsed_s: float = 0.0

    @property
    def found(self) -> bool:
        return self.entry is not None


async def lookup(
    db: Database,
    number: str | None,
    *,
    timeout_s: float = 0.15,
    default_region: str | None = None,
) -> DirectoryResult:
    """The directory entry for ``number``; never raises, returns within ``timeout_s``."""
    started = time.monotonic()

    def result(status: LookupStatus, **fields: Any) -> DirectoryResult:
        return DirectoryResult(status, elapsed_s=time.monotonic() - started, **fields)

    try:
        if number is None or is_withheld(number):
            return result("hidden")
        try:
            e164 = normalize_number(number, default_region=default_region)
        except InvalidNumberError as e:
            logger.debug("caller number %s is not valid: %s", mask_number(number), e)
            return result("invalid", reason=str(e))
        budget = max(timeout_s - (time.monotonic() - started), 0.0)
        try:
            # Cancelling makes asyncpg cancel the query on the server. aiosqlite's thread
            # cannot be interrupted: there the late query finishes in the background.
            cancel = db.backend == "postgresql"
            entry = await db.bounded(_fetch(db, e164), budget, cancel=cancel)
        except Exception as e:
            kind, reason = classify_failure(e)
            if isinstance(e, TimeoutError):
                reason = f"no answer from the database within {timeout_s:g} s"
            _report_once(kind, type(e).__name__, reason, e164)
            return result("failed", number=e164, failure=kind, reason=reason)
        if entry is None:
            return result("unknown", number=e164)
        return result("found", number=e164, entry=entry)
    except Exception as e:  # a bug here must not end a call either
        _report_once("error", f"bug:{type(e).__name__}", repr(e), None)
        return result("failed", failure="error", reason=f"{type(e).__name__}: {e}")


async def _fetch(db: Database, number: str) -> DirectoryEntry | None:
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(directory).where(directory.c.number == number))).first()
    return DirectoryEntry.from_row(row._mapping) if row else None


def classify_failure(error: BaseException) -> tuple[FailureKind, str]:
    """What kind of failure ``error`` is, and a one-line reason free of SQL and numbers."""
    if isinstance(error, TimeoutError):
        return "timeout", str(error) or "timed out"
    # SQLAlchemy wraps the driver's exception: the driver's message is the useful one.
    inner: BaseException = getattr(error, "orig", None) or error
    message = (str(inner).splitlines() or [""])[0][:200]
    lowered = message.lower()
    if "locked" in lowered or "busy" in lowered:
        return "locked", f"the database is locked by another connection ({message})"
    chain = (error, inner, error.__cause__, inner.__cause__)
    if (
        any(isinstance(e, OSError) for e in chain)
        or getattr(error, "connection_invalidated", False)
        or "unable to open" in lowered
        or "connect" in lowered
    ):
        return "unreachable", f"cannot reach the database: {type(inner).__name__}: {message}"
    return "error", f"{type(inner).__name__}: {message}"


_reported: set[tuple[str, str]] = set()


def _report_once(kind: FailureKind, key: str, reason: str, number: str | None) -> None:
    if (kind, key) in _reported:
        return
    _reported.add((kind, key))
    logger.warning(
        "directory lookup failed (%s) for caller %s: %s. Calls go on without caller details; "
        "this failure is logged once per process",
        kind,
        mask_number(number) or "-",
        reason,
    )


def forget_reported_failures() -> None:
    """Log the next failure of each kind again (tests; a long-lived process after repair)."""
    _reported.clear()


@dataclass(frozen=True, slots=True)
class ImportReport:
    path: str
    rows: int  # data rows read (blank lines aside)
    inserted: int
    updated: int
    problems: tuple[RowProblem, ...]
    duplicates: tuple[Duplicate, ...]
    refused: bool  # on_error="refuse" and some row was bad: nothing written
    elapsed_s: float

    @property
    def written(self) -> int:
        return self.inserted + self.updated


async def import_csv(
    db: Database,
    path: str | Path,
    *,
    on_error: Literal["skip", "refuse"],
    default_region: str | None = None,
    batch_size: int = 1000,
) -> ImportReport:
    """Upsert the file's entries in one transaction. Raises CsvFileError for a file that
    cannot be read at all; bad rows are in the report (and with "refuse", nothing is
    written)."""
    started = time.monotonic()
    parsed = await asyncio.to_thread(_parse_file, Path(path), default_region)
    refused = bool(parsed.problems) and on_error == "refuse"
    inserted = updated = 0
    if not refused:
        inserted, updated = await upsert_entries(db, parsed.entries, batch_size=batch_size)
    return ImportReport(
        path=str(path),
        rows=parsed.rows,
        inserted=inserted,
        updated=updated,
        problems=parsed.problems,
        duplicates=parsed.duplicates,
        refused=refused,
        elapsed_s=time.monotonic() - started,
    )


def _parse_file(path: Path, default_region: str | None) -> ParsedFile:
    try:
        # utf-8-sig: spreadsheet programs start their UTF-8 exports with a BOM.
        with path.open(encoding="utf-8-sig", newline="") as f:
            return parse_csv(f, default_region=default_region)
    except OSError as e:
        raise CsvFileError(f"cannot read {path}: {e.strerror or e}") from None


async def upsert_entries(
    db: Database, entries: Sequence[DirectoryEntry], *, batch_size: int = 1000
) -> tuple[int, int]:
    """Insert or replace entries in one transaction; returns (inserted, updated)."""
    inserted = updated = 0
    if not entries:
        return 0, 0
    insert = db.upsert_insert()(directory)
    statement = insert.on_conflict_do_update(
        index_elements=[directory.c.number],
        set_={c.name: insert.excluded[c.name] for c in directory.c if c.name != "number"},
    )
    now = time.time()
    async with db.write() as conn:
        for start in range(0, len(entries), batch_size):
            batch = entries[start : start + batch_size]
            query = select(directory.c.number).where(
                directory.c.number.in_([e.number for e in batch])
            )
            existing = len((await conn.execute(query)).all())
            await conn.execute(statement, [e.as_row(now) for e in batch])
            updated += existing
            inserted += len(batch) - existing
    return inserted, updated
