"""The tables, as SQLAlchemy Core objects for queries, and the ordered migrations.

The migrations are plain SQL, frozen once released: a new column is a new migration,
never an edit of an old one, because a database out there has already run it. The
``Table`` objects below describe the schema after the last migration; queries use them.

Times are Unix seconds (``DOUBLE PRECISION``) on both backends: SQLite has no time type,
and one representation means one code path. JSON is ``JSONB`` on PostgreSQL and ``TEXT``
on SQLite (a ``JSON`` column would get SQLite's NUMERIC affinity and turn ``123`` into
an integer).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import JSON, Column, Float, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import JSONB

_JSON = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData()

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", Text, nullable=False),
    Column("applied_at", Float, nullable=False),
)

directory = Table(
    "directory",
    metadata,
    Column("number", Text, primary_key=True),  # E.164
    Column("name", Text),
    Column("account_id", Text),
    Column("tier", Text),
    Column("language", Text),  # BCP-47
    Column("notes", Text),
    Column("extra", _JSON, nullable=False),
    Column("updated_at", Float, nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("call_id", Text, primary_key=True),
    Column("room", Text),
    Column("route", Text),
    Column("caller_number", Text),  # masked unless the recorder was told otherwise
    Column("called_number", Text),
    Column("started_at", Float, nullable=False),
    Column("answered_at", Float),
    Column("ended_at", Float),
    Column("status", Text, nullable=False),  # in_progress | complete
    Column("disconnect_reason", Text),
    Column("statuses", _JSON, nullable=False),
    Column("transcript", _JSON, nullable=False),
    Column("tool_calls", _JSON, nullable=False),
    Column("providers", _JSON, nullable=False),
    Column("usage", _JSON, nullable=False),
    Column("turns", Integer, nullable=False),
    Column("writer", Text, nullable=False),
    Column("revision", Integer, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("recording", _JSON),  # the call's recording parts (``records.model.Recording``)
)

# Placed dial-outs, for the per-caller hourly limit: every call runs in its own process,
# so the limit must live where all of them see it. The caller is a keyed hash, not a number.
dials = Table(
    "dials",
    metadata,
    Column("caller_key", Text, nullable=False),
    Column("call_id", Text, nullable=False),
    Column("at", Float, nullable=False),
)

# Which agent holds a call and when it last said it was alive (``data/leases.py``): the
# guardian reads it to replace a dead agent long before the LiveKit server notices.
call_leases = Table(
    "call_leases",
    metadata,
    Column("call_id", Text, primary_key=True),  # the caller's SIP call ID
    Column("holder", Text, nullable=False),  # the agent participant's identity
    Column("alive_at", Float, nullable=False),  # the database's clock, Unix seconds
)


# PIN attempts, for the lockout across calls (``call.pin_lockout``): shared by every worker
# like the dial log. The caller is a keyed hash of the number (``data.pin_attempts``).
pin_attempts = Table(
    "pin_attempts",
    metadata,
    Column("caller_key", Text, nullable=False),
    Column("at", Float, nullable=False),
    Column("ok", Integer, nullable=False),  # 1: the right PIN, 0: a wrong one
)


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    # ``{json}`` is replaced by the backend's JSON column type.
    statements: tuple[str, ...]


CREATE_SCHEMA_VERSION = (
    "CREATE TABLE IF NOT EXISTS schema_version ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)"
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "caller directory",
        (
            "CREATE TABLE directory ("
            " number TEXT PRIMARY KEY, name TEXT, account_id TEXT, tier TEXT,"
            " language TEXT, notes TEXT, extra {json} NOT NULL,"
            " updated_at DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX directory_account_id ON directory (account_id)",
        ),
    ),
    Migration(
        2,
        "call records",
        (
            "CREATE TABLE calls ("
            " call_id TEXT PRIMARY KEY, room TEXT, route TEXT,"
            " caller_number TEXT, called_number TEXT,"
            " started_at DOUBLE PRECISION NOT NULL, answered_at DOUBLE PRECISION,"
            " ended_at DOUBLE PRECISION, status TEXT NOT NULL, disconnect_reason TEXT,"
            " statuses {json} NOT NULL, transcript {json} NOT NULL,"
            " tool_calls {json} NOT NULL, providers {json} NOT NULL, usage {json} NOT NULL,"
            " turns INTEGER NOT NULL, writer TEXT NOT NULL, revision INTEGER NOT NULL,"
            " heartbeat_at DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX calls_started_at ON calls (started_at)",
        ),
    ),
    Migration(
        3,
        "dial log",
        (
            "CREATE TABLE dials ("
            " caller_key TEXT NOT NULL, call_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)",
            "CREATE INDEX dials_caller_at ON dials (caller_key, at)",
        ),
    ),
    Migration(
        4,
        "call leases",
        (
            "CREATE TABLE call_leases ("
            " call_id TEXT PRIMARY KEY, holder TEXT NOT NULL,"
            " alive_at DOUBLE PRECISION NOT NULL)",
        ),
    ),
    Migration(
        5,
        "call recordings",
        ("ALTER TABLE calls ADD COLUMN recording {json}",),
    ),
    Migration(
        6,
        "pin attempts",
        (
            "CREATE TABLE pin_attempts ("
            " caller_key TEXT NOT NULL, at DOUBLE PRECISION NOT NULL, ok INTEGER NOT NULL)",
            "CREATE INDEX pin_attempts_caller_at ON pin_attempts (caller_key, at)",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version


def migration_sql(migration: Migration, backend: str) -> tuple[str, ...]:
    """The statements of one migration for a backend ("sqlite" or "postgresql")."""
    json_type = "JSONB" if backend == "postgresql" else "TEXT"
    return tuple(s.replace("{json}", json_type) for s in migration.statements)
