"""PIN lockout across calls: the pure decision (attempts, window, back-off), the shared
log in a real SQLite database, and the PIN gate with a locked-out number."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from livekit import rtc

from switchboard.call.event_types import (
    PinAttempt,
    PinLockedOut,
    PinLockout,
    PinLockoutEnded,
    PinRefused,
)
from switchboard.call.keypad import DtmfCollector
from switchboard.call.pin import PIN_WRONG, LockoutCheck, pin_gate
from switchboard.call.pin_lockout import (
    CallerLockout,
    Standing,
    locked_out_line,
    lockout_seconds,
    standing,
)
from switchboard.config.prompts import load_prompts
from switchboard.config.settings import PinLockoutSettings, load_settings
from switchboard.data.db import Database, open_database
from switchboard.data.pin_attempts import MEMORY_S, Attempt
from switchboard.routing import Route
from tests.test_dtmf import PIN, PROMPT, FakeSession, Recorded

pytestmark = pytest.mark.unit

RULE = PinLockoutSettings(attempts=3, window_s=600, lockout_s=60, lockout_max_s=300)
T0 = 1_800_000_000.0
CALLER = "+447700900123"


def wrong(*times: float) -> list[Attempt]:
    return [Attempt(T0 + t, ok=False) for t in times]


# --- the decision -----------------------------------------------------------------------


def test_a_number_with_no_attempts_may_try() -> None:
    assert standing([], T0, RULE) == Standing(locked_until=None, wrong=0, lockouts=0)


def test_wrong_pins_below_the_limit_only_count() -> None:
    now = standing(wrong(0, 10), T0 + 20, RULE)
    assert not now.locked and now.wrong == 2


def test_the_limit_within_the_window_locks_the_number_out() -> None:
    now = standing(wrong(0, 10, 20), T0 + 30, RULE)
    assert now.locked and now.locked_until == T0 + 20 + 60
    assert now.lockouts == 1 and now.lockout_s == 60


def test_wrong_pins_older_than_the_window_do_not_count() -> None:
    now = standing(wrong(0, 10, 700), T0 + 701, RULE)  # the first two are 690 s old
    assert not now.locked and now.wrong == 1
    assert standing(wrong(0), T0 + 601, RULE).wrong == 0


def test_a_lockout_ends_and_its_end_is_noted_once() -> None:
    history = wrong(0, 10, 20)
    after = standing(history, T0 + 81, RULE)
    assert not after.locked and after.wrong == 0
    assert after.lockout_ended == T0 + 80
    tried_since = standing([*history, *wrong(90)], T0 + 91, RULE)
    assert tried_since.lockout_ended is None and tried_since.wrong == 1


def test_each_further_lockout_lasts_twice_as_long_up_to_the_maximum() -> None:
    assert [lockout_seconds(n, RULE) for n in range(5)] == [60, 120, 240, 300, 300]
    first = wrong(0, 1, 2)  # locked until +62
    second = wrong(100, 101, 102)  # locked until +102 + 120
    now = standing([*first, *second], T0 + 103, RULE)
    assert now.locked_until == T0 + 102 + 120 and now.lockouts == 2
    third = wrong(300, 301, 302)
    assert standing([*first, *second, *third], T0 + 303, RULE).locked_until == T0 + 302 + 240
    assert lockout_seconds(10_000, RULE) == 300  # no overflow however many


def test_a_right_pin_forgets_wrong_ones_and_lockouts() -> None:
    history = [*wrong(0, 1, 2), Attempt(T0 + 100, ok=True), *wrong(200, 201)]
    now = standing(history, T0 + 202, RULE)
    assert not now.locked and now.wrong == 2 and now.lockouts == 0
    assert standing([*history, *wrong(202.5)], T0 + 203, RULE).locked_until == T0 + 202.5 + 60


def test_attempts_during_a_lockout_do_not_extend_it() -> None:
    # Calls in parallel, each still asking when another one's wrong PIN locked the number.
    now = standing(wrong(0, 1, 2, 3, 4, 5, 6), T0 + 7, RULE)
    assert now.locked_until == T0 + 62 and now.lockouts == 1


def test_the_order_of_the_log_does_not_matter() -> None:
    history = [*wrong(20, 0), Attempt(T0 + 5, ok=True), *wrong(10, 30)]
    assert standing(history, T0 + 31, RULE) == standing(
        sorted(history, key=lambda a: a.at), T0 + 31, RULE
    )
    assert standing(history, T0 + 31, RULE).locked  # 10, 20, 30 after the right one


def test_attempts_stamped_in_the_future_wait_for_their_time() -> None:
    assert not standing(wrong(0, 1, 50), T0 + 10, RULE).locked


def test_the_settings_have_sane_defaults_and_limits() -> None:
    base = {"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
    rule = load_settings(base).pin_lockout
    assert (rule.attempts, rule.window_s, rule.lockout_s, rule.lockout_max_s) == (
        5,
        3600,
        900,
        86400,
    )
    with pytest.raises(Exception, match="SWITCHBOARD_PIN_LOCKOUT_ATTEMPTS"):
        load_settings({**base, "SWITCHBOARD_PIN_LOCKOUT_ATTEMPTS": "0"})


# --- the shared log ---------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="function")
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    try:
        yield database
    finally:
        await database.close()


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def lockout_for(db: Database, number: str | None, clock: Clock) -> CallerLockout:
    return CallerLockout(db, number, "secret", RULE, clock=clock)


async def test_wrong_pins_count_across_calls_per_number(db: Database, tmp_path: Path) -> None:
    clock = Clock()
    for _ in range(3):  # three calls, one wrong PIN each, as three job processes would
        call = lockout_for(db, CALLER, clock)
        assert not (await call.standing()).locked
        await call.record(False)
        clock.now += 5
    next_call = lockout_for(db, CALLER, clock)
    assert (await next_call.standing()).locked_until == T0 + 10 + 60
    other = lockout_for(db, "+447700900999", clock)
    assert await other.standing() == Standing(locked_until=None, wrong=0, lockouts=0)
    clock.now = T0 + 71
    later = await lockout_for(db, CALLER, clock).standing()
    assert not later.locked and later.lockout_ended == T0 + 70
    # What the table holds: no number, masked or not.
    dump = "\n".join(sqlite3.connect(tmp_path / "switchboard.db").iterdump())
    assert "pin_attempts" in dump and "7700900123" not in dump and "0123" not in dump


async def test_withheld_numbers_share_one_count(db: Database) -> None:
    clock = Clock()
    for number in (None, "", None):
        await lockout_for(db, number, clock).record(False)
    assert (await lockout_for(db, None, clock).standing()).locked


async def test_attempts_older_than_the_memory_are_forgotten(db: Database) -> None:
    clock = Clock()
    await lockout_for(db, CALLER, clock).record(False)
    clock.now += MEMORY_S + 1
    await lockout_for(db, "+447700900999", clock).record(False)  # any write prunes
    clock.now += 1
    assert (await lockout_for(db, CALLER, clock).standing()).wrong == 0


async def test_without_the_database_a_call_counts_its_own(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    await db.engine.dispose()
    (tmp_path / "switchboard.db").unlink()
    (tmp_path / "switchboard.db").mkdir()  # now unopenable: every read and write fails
    clock = Clock()
    call = lockout_for(db, CALLER, clock)
    for _ in range(3):
        await call.record(False)
        clock.now += 1
    assert (await call.standing()).locked
    await db.close()


# --- the gate ---------------------------------------------------------------------------


@pytest.fixture
def room() -> rtc.EventEmitter[str]:
    return rtc.EventEmitter[str]()


LOCKED = "Call back later."


async def gate(
    session: FakeSession, lockout: CallerLockout, attempts: int = 5
) -> tuple[bool, Recorded]:
    events = Recorded()
    ok = await pin_gate(
        session,
        DtmfCollector(session.room),
        "caller",
        expected=PIN,
        attempts=attempts,
        prompt=PROMPT,
        timeout_s=0.2,
        inter_digit_s=0.2,
        events=events,
        lockout=LockoutCheck(lockout, LOCKED),
    )
    return ok, events


async def test_the_gate_locks_out_mid_call_and_then_asks_nothing(
    room: rtc.EventEmitter[str], db: Database
) -> None:
    clock = Clock()
    session = FakeSession(room, answers=["1111#", "2222#", "3333#", PIN + "#"])
    ok, events = await gate(session, lockout_for(db, CALLER, clock))
    assert not ok  # the right PIN came too late: the number was locked out by then
    assert session.said == [
        PROMPT,
        f"{PIN_WRONG} {PROMPT}",
        f"{PIN_WRONG} {PROMPT}",
        f"{PIN_WRONG} {LOCKED}",
    ]
    assert [e.result for e in events.of(PinAttempt)] == ["wrong"] * 3
    (started,) = events.of(PinLockout)
    assert (started.until, started.seconds, started.lockouts) == (T0 + 60, 60, 1)
    assert events.seen[-1] == PinRefused(reason="locked_out", attempts=3)

    clock.now += 30  # the next call, still locked out: told so, asked nothing
    session = FakeSession(room, answers=[PIN + "#"])
    ok, events = await gate(session, lockout_for(db, CALLER, clock))
    assert not ok and session.said == [LOCKED]
    assert events.seen == [PinLockedOut(until=T0 + 60), PinRefused(reason="locked_out", attempts=0)]

    clock.now += 31  # after the lockout: the end is noted, the right PIN lets them in
    session = FakeSession(room, answers=[PIN + "#"])
    ok, events = await gate(session, lockout_for(db, CALLER, clock))
    assert ok
    assert events.of(PinLockoutEnded) == [PinLockoutEnded(ended_at=T0 + 60)]


async def test_silence_is_no_guess(room: rtc.EventEmitter[str], db: Database) -> None:
    clock = Clock()
    ok, _ = await gate(FakeSession(room), lockout_for(db, CALLER, clock), attempts=4)
    assert not ok
    assert (await lockout_for(db, CALLER, clock).standing()).wrong == 0


def test_the_locked_out_line_follows_the_routes_language() -> None:
    prompts = load_prompts()
    assert locked_out_line(prompts, Route(name="x")) == prompts["pin_locked"]
    spanish = Route(name="x", language="es-MX")
    assert locked_out_line(prompts, spanish) == prompts["pin_locked_es"]
    assert locked_out_line(prompts, Route(name="x", language="de")) == prompts["pin_locked"]
