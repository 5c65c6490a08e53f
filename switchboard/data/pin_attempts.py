"""The PIN attempts of each caller number, shared by every worker through the database.

``call.pin_lockout`` decides from them; this module reads and writes them. The number is
stored as a keyed hash (HMAC-SHA256 under a key derived from ``LIVEKIT_API_SECRET``),
neither in clear nor masked: a masked number (``+4420••••4567``) is shared by many
numbers, and counting by it would lock out callers who never tried; a plain hash is no
better than clear text, since every phone number can be hashed in minutes. With the
key, the table alone (a backup, a dump) does not say who called; every worker of the
project holds the same secret, so they all count the same number alike. Changing the
secret starts every count afresh.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from switchboard.data.db import Database
from switchboard.data.schema import pin_attempts
from switchboard.dialing.policy import caller_key

# How long attempts are kept: how far back the lockout's back-off remembers.
MEMORY_S = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Attempt:
    """One PIN attempt from a caller number: when, and whether the PIN was right."""

    at: float
    ok: bool


def hashed_caller(caller_number: str | None, secret: str) -> str:
    """The number's key in the table: its digits (all withheld numbers alike), keyed."""
    key = hashlib.sha256(f"switchboard-pin-attempts:{secret}".encode()).digest()
    return hmac.new(key, caller_key(caller_number).encode(), hashlib.sha256).hexdigest()


class PinAttemptLog:
    """One caller number's attempts in the database."""

    def __init__(self, db: Database, caller_number: str | None, secret: str) -> None:
        self._db = db
        self._key = hashed_caller(caller_number, secret)

    async def history(self, now: float) -> list[Attempt]:
        """The number's attempts of the last ``MEMORY_S``."""
        query = select(pin_attempts.c.at, pin_attempts.c.ok).where(
            pin_attempts.c.caller_key == self._key, pin_attempts.c.at > now - MEMORY_S
        )
        async with self._db.engine.connect() as conn:
            return [Attempt(row.at, bool(row.ok)) for row in await conn.execute(query)]

    async def add(self, attempt: Attempt) -> None:
        async with self._db.write() as conn:
            # Every number's forgotten attempts go with each write: the table stays small.
            forgotten = pin_attempts.c.at < attempt.at - MEMORY_S
            await conn.execute(delete(pin_attempts).where(forgotten))
            await conn.execute(
                insert(pin_attempts).values(
                    caller_key=self._key, at=attempt.at, ok=1 if attempt.ok else 0
                )
            )
