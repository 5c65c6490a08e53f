"""The console's query strings, read strictly: anything unexpected is a 400 that says
which parameter is wrong, never a database error or a page built from it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import cast

from switchboard.data.records.model import CallStatus
from switchboard.data.records.query import CallFilter

STATUSES = ("complete", "in_progress", "incomplete")
_ROUTE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # as routes.toml allows
_REASON = re.compile(r"[A-Z][A-Z_]{0,63}")  # the server's disconnect reasons
_NUMBER = re.compile(r"\+?[0-9]{2,15}")
CALL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
KNOWN = frozenset({"route", "status", "reason", "date", "number", "limit", "unmasked"})
MAX_LIMIT = 500


class BadParameterError(ValueError):
    """A query string the console does not accept; the message names the parameter."""


def call_filter(query: Mapping[str, str]) -> CallFilter:
    unknown = sorted(set(query) - KNOWN)
    if unknown:
        raise BadParameterError(f"unknown parameter {unknown[0][:40]!r}")
    route = _pick(query, "route", _ROUTE, "a route name")
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadParameterError(f"status must be one of {', '.join(STATUSES)}")
    reason = _pick(query, "reason", _REASON, "a disconnect reason such as CLIENT_INITIATED")
    number = _pick(query, "number", _NUMBER, "2 to 15 digits of the caller's number")
    since = until = None
    if day := query.get("date"):
        try:
            start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
        except ValueError:
            raise BadParameterError("date must be a day, YYYY-MM-DD (UTC)") from None
        since, until = start.timestamp(), (start + timedelta(days=1)).timestamp()
    limit = 50
    if raw := query.get("limit"):
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
            raise BadParameterError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
        limit = int(raw)
    return CallFilter(
        route=route,
        status=cast(CallStatus | None, status),
        reason=reason,
        since=since,
        until=until,
        number=number.lstrip("+") if number else None,
        limit=limit,
    )


def wants_unmasked(query: Mapping[str, str]) -> bool:
    value = query.get("unmasked", "")
    if value not in ("", "0", "1"):
        raise BadParameterError("unmasked must be 0 or 1")
    return value == "1"


def _pick(query: Mapping[str, str], key: str, pattern: re.Pattern[str], what: str) -> str | None:
    value = query.get(key) or None
    if value is not None and not pattern.fullmatch(value):
        raise BadParameterError(f"{key} must be {what}")
    return value
