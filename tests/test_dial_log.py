"""The per-caller dial limit holds across calls (each call is its own process), on SQLite
and PostgreSQL, and a database that is down falls back to the process's own history."""

from __future__ import annotations

import pytest

from switchboard.data.db import Database
from switchboard.data.dial_history import SharedDialHistory, hashed_key
from switchboard.dialing.policy import DialHistory

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

CALLER = "+442071234567"
NOW = 1_800_000_000.0


async def test_dials_from_other_calls_count_for_the_caller(db: Database) -> None:
    first_call = SharedDialHistory(db, DialHistory())  # as in another job process
    await first_call.record(CALLER, "call-1", NOW - 600)
    await first_call.record(CALLER, "call-1", NOW - 300)
    second_call = SharedDialHistory(db, DialHistory())
    seen = await second_call.view(CALLER, "call-2", NOW)
    assert seen.caller_times == (NOW - 600, NOW - 300)
    assert seen.call_count == 0  # the per-call count is this call's own


async def test_dials_older_than_an_hour_and_other_callers_do_not_count(
    db: Database,
) -> None:
    history = SharedDialHistory(db, DialHistory())
    await history.record(CALLER, "c", NOW - 4000)
    await history.record("+15105550100", "c", NOW - 10)
    seen = await SharedDialHistory(db, DialHistory()).view(CALLER, "x", NOW)
    assert seen.caller_times == ()


async def test_a_database_that_is_down_falls_back_to_local_memory(
    down_db: Database,
) -> None:
    history = SharedDialHistory(down_db, DialHistory())
    await history.record(CALLER, "call-1", NOW - 5)
    seen = await history.view(CALLER, "call-1", NOW)
    assert seen.caller_times == (NOW - 5,)
    assert seen.call_count == 1


def test_the_key_is_not_the_number() -> None:
    key = hashed_key(CALLER)
    assert "2071234567" not in key
    assert key == hashed_key("+44 20 7123 4567")  # same digits, same caller
