"""PIN lockout across calls: whether a caller number may try a PIN now.

Per call, a route allows ``pin_attempts`` tries; alone, that lets a caller guess a 4-digit
PIN in about a thousand calls (fewer with calls in parallel). So every attempt is also
logged per caller number in the database, which every worker shares
(``data.pin_attempts``), and this module decides from that log:

- ``SWITCHBOARD_PIN_LOCKOUT_ATTEMPTS`` wrong PINs within ``SWITCHBOARD_PIN_LOCKOUT_WINDOW``
  lock the number out for ``SWITCHBOARD_PIN_LOCKOUT`` seconds;
- each further lockout (the log remembers a week, ``data.pin_attempts.MEMORY_S``) lasts
  twice the one before, up to ``SWITCHBOARD_PIN_LOCKOUT_MAX``: back-off, so a patient
  attacker gets a handful of guesses a day, not a handful an hour;
- a right PIN forgets the number's wrong ones and its lockouts.

The decision (``standing``) is pure: it replays the log, so every worker reading the same
log decides the same. All withheld numbers share one count: counting them apart is
impossible, and not counting them would let anyone guess with their number withheld.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from switchboard.config.prompts import Prompts
from switchboard.config.settings import PinLockoutSettings
from switchboard.data.db import Database
from switchboard.data.pin_attempts import Attempt, PinAttemptLog
from switchboard.routing import Route

logger = logging.getLogger("switchboard.pin")

# The database's share of the PIN gate's time, per read or write: the caller waits on it.
BUDGET_S = 0.5


@dataclass(frozen=True, slots=True)
class Standing:
    """Where a caller number stands, at one moment."""

    locked_until: float | None  # locked out until then (None: may try now)
    wrong: int  # wrong PINs counting towards the next lockout
    lockouts: int  # lockouts remembered (the next lasts 2**lockouts times the first)
    # The end of the number's last lockout when nothing was tried since: the first call
    # after a lockout, which notes its end in the record.
    lockout_ended: float | None = None
    lockout_s: float | None = None  # how long the lockout in force lasts, start to end

    @property
    def locked(self) -> bool:
        return self.locked_until is not None


def lockout_seconds(lockouts_before: int, rule: PinLockoutSettings) -> float:
    """How long a lockout lasts after ``lockouts_before`` others: doubled each time."""
    doubled: float = rule.lockout_s * 2.0 ** min(lockouts_before, 32)
    return min(doubled, rule.lockout_max_s)


def standing(history: Sequence[Attempt], now: float, rule: PinLockoutSettings) -> Standing:
    """Replay a caller number's attempts (any order) to decide where it stands at ``now``."""
    wrong: list[float] = []  # the wrong attempts counting towards the next lockout
    lockouts = 0
    until: float | None = None  # the end of the last lockout
    length = 0.0  # and how long it lasts
    last_at: float | None = None
    for attempt in sorted(history, key=lambda a: a.at):
        if attempt.at > now:
            continue  # another worker's clock ahead of ours: not yet
        last_at = attempt.at
        if until is not None and attempt.at < until:
            continue  # a call in parallel, still asking as the lockout began: no extra count
        if attempt.ok:
            wrong, lockouts, until = [], 0, None
            continue
        wrong = [t for t in wrong if t > attempt.at - rule.window_s] + [attempt.at]
        if len(wrong) >= rule.attempts:
            length = lockout_seconds(lockouts, rule)
            until = attempt.at + length
            lockouts += 1
            wrong = []
    if until is not None and now < until:
        return Standing(locked_until=until, wrong=0, lockouts=lockouts, lockout_s=length)
    counting = sum(1 for t in wrong if t > now - rule.window_s)
    ended = until if until is not None and (last_at is None or last_at < until) else None
    return Standing(locked_until=None, wrong=counting, lockouts=lockouts, lockout_ended=ended)


def locked_out_line(prompts: Prompts, route: Route) -> str:
    """What a locked-out caller hears: ``pin_locked.md``, or its variant in the route's
    language (``pin_locked_es.md`` for "es-MX") when there is one."""
    primary = route.language.split("-", 1)[0].lower()
    return prompts.texts.get(f"pin_locked_{primary}") or prompts["pin_locked"]


class CallerLockout:
    """One call's view of its caller number's lockout, for the PIN gate.

    A database that is slow or down must neither keep the caller waiting nor let the
    number guess unbounded: this call's own attempts are kept here too, so the decision
    falls back to them (and the route's per-call limit still holds), and the failure is
    logged.
    """

    def __init__(
        self,
        db: Database,
        caller_number: str | None,
        secret: str,
        rule: PinLockoutSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._log = PinAttemptLog(db, caller_number, secret)
        self._rule = rule
        self._clock = clock
        self._mine: list[Attempt] = []  # this call's attempts
        self._unsaved: list[Attempt] = []  # those of them the database may not have

    @property
    def rule(self) -> PinLockoutSettings:
        return self._rule

    async def standing(self) -> Standing:
        now = self._clock()
        try:
            shared = await self._db.bounded(self._log.history(now), BUDGET_S, cancel=True)
        except Exception as e:
            logger.warning("PIN attempts unavailable (%s); counting this call's", type(e).__name__)
            return standing(self._mine, now, self._rule)
        # A write that timed out may land later and count twice: too strict, never too lax.
        return standing([*shared, *self._unsaved], now, self._rule)

    async def record(self, ok: bool) -> None:
        attempt = Attempt(self._clock(), ok)
        self._mine.append(attempt)
        try:
            await self._db.bounded(self._log.add(attempt), BUDGET_S, cancel=False)
        except Exception as e:
            self._unsaved.append(attempt)
            logger.warning("could not log the PIN attempt (%s)", type(e).__name__)
