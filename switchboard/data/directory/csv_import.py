"""Reading a directory CSV file into entries, bad rows and duplicates. Pure: no database.

Columns: ``number,name,account_id,tier,language,notes``; only ``number`` is required and
any other column becomes a key of ``extra``. Line numbers are the file's physical lines
(the header is line 1), counted where a record starts, so a quoted field spanning lines
still points at the right place.

Duplicates (two rows for the same number once normalised): the last row wins and every
duplicate is reported. A file that lists a customer twice is usually an export with an
update appended, so refusing it would make the common case painful; the report still
says which lines collided so a real mistake gets seen.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import MappingProxyType

from switchboard.data.directory.entry import (
    DirectoryEntry,
    check_text,
    normalize_language,
)
from switchboard.numbers import (
    InvalidNumberError,
    normalize_number,
)

KNOWN_COLUMNS = ("number", "name", "account_id", "tier", "language", "notes")
_LIMITS = {"name": 200, "account_id": 100, "tier": 50, "notes": 2000}
_EXTRA_LIMIT = 1000


class CsvFileError(ValueError):
    """The file as a whole cannot be imported (no header, no number column, ...)."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    reason: str  # never echoes the number: reports are printed and logged


@dataclass(frozen=True, slots=True)
class Duplicate:
    number: str  # E.164; mask it when printing
    lines: tuple[int, ...]  # the last one won


@dataclass(frozen=True, slots=True)
class ParsedFile:
    rows: int
    entries: tuple[DirectoryEntry, ...]  # one per number, the last row of each
    problems: tuple[RowProblem, ...]
    duplicates: tuple[Duplicate, ...]


def read_header(header: list[str]) -> tuple[str, ...]:
    """Column names, known ones lower-cased; CsvFileError if unusable."""
    names = tuple(
        name.strip().lower() if name.strip().lower() in KNOWN_COLUMNS else name.strip()
        for name in header
    )
    if "number" not in names:
        raise CsvFileError(f"the header has no 'number' column (columns: {', '.join(names)})")
    if "" in names:
        raise CsvFileError(f"column {names.index('') + 1} of the header has no name")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise CsvFileError(f"the header repeats column(s): {', '.join(repeated)}")
    return names


def parse_row(
    columns: tuple[str, ...], values: list[str], *, default_region: str | None
) -> DirectoryEntry:
    """One data row as an entry; ValueError listing every problem of the row."""
    if len(values) != len(columns):
        raise ValueError(f"has {len(values)} fields, the header has {len(columns)}")
    row = dict(zip(columns, values, strict=True))
    problems: list[str] = []
    fields: dict[str, str | None] = {}
    number = ""
    try:
        if not row["number"].strip():
            raise InvalidNumberError("missing")
        number = normalize_number(row["number"], default_region=default_region)
    except InvalidNumberError as e:
        problems.append(f"number: {e}")
    for name, limit in _LIMITS.items():
        try:
            fields[name] = check_text(row.get(name, ""), limit=limit, multiline=name == "notes")
        except ValueError as e:
            problems.append(f"{name}: {e}")
    try:
        raw = row.get("language", "").strip()
        fields["language"] = normalize_language(raw) if raw else None
    except ValueError as e:
        problems.append(f"language: {e}")
    extra: dict[str, str] = {}
    for key in columns:
        if key in KNOWN_COLUMNS or not row[key].strip():
            continue  # an empty custom field is no information: leave it out
        try:
            extra[key] = check_text(row[key], limit=_EXTRA_LIMIT, multiline=True)
        except ValueError as e:
            problems.append(f"{key}: {e}")
    if problems:
        raise ValueError("; ".join(problems))
    return DirectoryEntry(
        number=number,
        name=fields["name"] or None,
        account_id=fields["account_id"] or None,
        tier=fields["tier"] or None,
        language=fields["language"],
        notes=fields["notes"] or None,
        extra=MappingProxyType(extra),
    )


def _records(lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line where the record starts, fields) for each non-blank record."""
    reader = csv.reader(lines, strict=True)
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise CsvFileError(f"line {start}: not valid CSV ({e})") from None
        except UnicodeDecodeError:
            raise CsvFileError(f"line {start}: not UTF-8 text (save the file as UTF-8)") from None
        if values and any(v.strip() for v in values):
            yield start, values


def parse_csv(lines: Iterable[str], *, default_region: str | None = None) -> ParsedFile:
    """Every row checked; entries de-duplicated (last wins), problems and duplicates listed."""
    records = _records(lines)
    try:
        _, header = next(records)
    except StopIteration:
        raise CsvFileError("the file is empty (expected a header line with 'number')") from None
    columns = read_header(header)
    by_number: dict[str, DirectoryEntry] = {}
    lines_of: dict[str, list[int]] = {}
    problems: list[RowProblem] = []
    rows = 0
    for line, values in records:
        rows += 1
        try:
            entry = parse_row(columns, values, default_region=default_region)
        except ValueError as e:
            problems.append(RowProblem(line, str(e)))
            continue
        by_number.pop(entry.number, None)  # re-insert: the entry keeps the winner's position
        by_number[entry.number] = entry
        lines_of.setdefault(entry.number, []).append(line)
    duplicates = tuple(
        Duplicate(number, tuple(found)) for number, found in lines_of.items() if len(found) > 1
    )
    return ParsedFile(rows, tuple(by_number.values()), tuple(problems), duplicates)
