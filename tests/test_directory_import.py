"""Directory CSV import on SQLite and PostgreSQL: good files, bad rows (with line numbers)
in both modes, duplicates, upserts, unreadable files and a large file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from switchboard.data.db import Database
from switchboard.data.directory.csv_import import CsvFileError, RowProblem
from switchboard.data.directory.store import import_csv, lookup

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

GOOD = """number,name,account_id,tier,language,notes,crm_id,region
+44 20 7123 4567,Alice Example,ACC-1,gold,en-gb,"prefers email, mornings",42,emea
tel:+1-415-555-2671,Bob Example,ACC-2,silver,en-US,,43,
(212) 555-0143,Carol Example,,,,"line one
line two",,amer
"""

BAD = """number,name,language
+442071234567,Alice,en
not-a-number,Mallory,en
+14155552671,Bob,english
,Nobody,en
+12125550143,Carol,en,extra-field
+33123456789,"Eve\x1b[2J",fr
+33123456780,Frank,fr
"""


def write(tmp_path: Path, text: str, name: str = "contacts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def test_import_good_file(db: Database, tmp_path: Path) -> None:
    report = await import_csv(db, write(tmp_path, GOOD), on_error="refuse", default_region="US")
    assert (report.rows, report.inserted, report.updated) == (3, 3, 0)
    assert not report.problems and not report.duplicates and not report.refused
    alice = (await lookup(db, "+442071234567")).entry
    assert alice is not None
    assert (alice.name, alice.tier, alice.language) == ("Alice Example", "gold", "en-GB")
    assert alice.notes == "prefers email, mornings"
    assert dict(alice.extra) == {"crm_id": "42", "region": "emea"}
    carol = (await lookup(db, "+12125550143")).entry
    assert carol is not None and carol.notes == "line one\nline two"
    assert carol.account_id is None and dict(carol.extra) == {"region": "amer"}


async def test_existing_numbers_are_updated(db: Database, tmp_path: Path) -> None:
    await import_csv(db, write(tmp_path, GOOD), on_error="refuse", default_region="US")
    update = "number,name,tier\n+442071234567,Alice Renamed,platinum\n+33123456789,Dan,\n"
    report = await import_csv(db, write(tmp_path, update, "b.csv"), on_error="refuse")
    assert (report.inserted, report.updated) == (1, 1)
    alice = (await lookup(db, "+442071234567")).entry
    assert alice is not None
    # An upsert replaces the whole entry: the file is the source of truth for its rows.
    assert (alice.name, alice.tier, alice.account_id) == ("Alice Renamed", "platinum", None)


def _lines_and_reasons(problems: tuple[RowProblem, ...]) -> dict[int, str]:
    return {p.line: p.reason for p in problems}


async def test_bad_rows_refused_nothing_written(db: Database, tmp_path: Path) -> None:
    report = await import_csv(db, write(tmp_path, BAD), on_error="refuse")
    assert report.refused and report.written == 0
    problems = _lines_and_reasons(report.problems)
    assert sorted(problems) == [3, 4, 5, 6, 7]
    assert problems[3].startswith("number:")
    assert "language" in problems[4]
    assert "number: missing" in problems[5]
    assert "4 fields" in problems[6]
    assert "control characters" in problems[7]
    assert (await lookup(db, "+442071234567")).status == "unknown"


async def test_bad_rows_skipped_good_rows_written(db: Database, tmp_path: Path) -> None:
    report = await import_csv(db, write(tmp_path, BAD), on_error="skip")
    assert not report.refused
    assert (report.rows, report.inserted) == (7, 2)
    assert sorted(_lines_and_reasons(report.problems)) == [3, 4, 5, 6, 7]
    assert (await lookup(db, "+442071234567")).status == "found"
    assert (await lookup(db, "+33123456780")).status == "found"
    assert (await lookup(db, "+14155552671")).status == "unknown"


async def test_duplicates_last_row_wins_and_are_reported(db: Database, tmp_path: Path) -> None:
    text = (
        "number,name\n+442071234567,First\n+14155552671,Bob\n"
        "+44 20 7123 4567,Second\n020 7123 4567,Third\n"
    )
    report = await import_csv(db, write(tmp_path, text), on_error="refuse", default_region="GB")
    assert (report.rows, report.inserted, report.refused) == (4, 2, False)
    assert [(d.number, d.lines) for d in report.duplicates] == [("+442071234567", (2, 4, 5))]
    entry = (await lookup(db, "+442071234567")).entry
    assert entry is not None and entry.name == "Third"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("name,tier\nAlice,gold\n", "no 'number' column"),
        ("number,name,name\n+442071234567,a,b\n", "repeats"),
        ('number,name\n+442071234567,"unterminated\n', "not valid CSV"),
    ],
)
async def test_unusable_files(db: Database, tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(CsvFileError, match=message):
        await import_csv(db, write(tmp_path, text), on_error="skip")


async def test_missing_and_non_utf8_files(db: Database, tmp_path: Path) -> None:
    with pytest.raises(CsvFileError, match="cannot read"):
        await import_csv(db, tmp_path / "missing.csv", on_error="skip")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("number,name\n+442071234567,Zo\xe9\n".encode("latin-1"))
    with pytest.raises(CsvFileError, match="UTF-8"):
        await import_csv(db, latin1, on_error="skip")


async def test_large_file(db: Database, tmp_path: Path) -> None:
    rows = 20_000
    lines = ["number,name,account_id,tier,language,segment"]
    lines += [
        f"+44 7700 {i:06d},Customer {i},ACC-{i},{('gold', 'silver')[i % 2]},en-GB,s{i % 7}"
        for i in range(rows)
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    started = time.monotonic()
    report = await import_csv(db, path, on_error="refuse")
    elapsed = time.monotonic() - started
    assert (report.rows, report.inserted, len(report.problems)) == (rows, rows, 0)
    assert elapsed < 30, f"{rows} rows took {elapsed:.1f} s"
    entry = (await lookup(db, "+447700019999", timeout_s=5)).entry
    assert entry is not None and entry.name == "Customer 19999"
    assert dict(entry.extra) == {"segment": f"s{19999 % 7}"}
    again = await import_csv(db, path, on_error="refuse")
    assert (again.inserted, again.updated) == (0, rows)
