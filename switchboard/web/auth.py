"""Who may read the console: whoever knows ``SWITCHBOARD_WEB_TOKEN``.

A login exchanges the token for a session (a random ID in an HttpOnly, SameSite=Strict
cookie, kept in this process's memory for ``SESSION_S``); scripts may send the token
itself as ``Authorization: Bearer``. Both are compared in constant time. Failed logins
are slowed down per client address, so the token cannot be guessed at network speed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MIN_TOKEN_CHARS = 16
SESSION_S = 12 * 3600.0
FAILURES_ALLOWED = 5  # per client address, per FAILURE_WINDOW_S
FAILURE_WINDOW_S = 300.0
COOKIE = "sb_console"


def same_secret(given: str, expected: str) -> bool:
    """Equal, in time independent of where they differ and of their lengths."""
    a = hashlib.sha256(given.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b) and bool(expected)


def token_problem(token: str) -> str | None:
    """Why this token cannot guard the console, or None."""
    if not token:
        return "SWITCHBOARD_WEB_TOKEN is not set: the console needs a password"
    if len(token) < MIN_TOKEN_CHARS:
        return f"SWITCHBOARD_WEB_TOKEN is shorter than {MIN_TOKEN_CHARS} characters"
    return None


@dataclass
class Sessions:
    token: str
    clock: Callable[[], float] = time.monotonic
    _sessions: dict[str, float] = field(default_factory=dict)  # id -> expiry
    _failures: dict[str, list[float]] = field(default_factory=dict)  # address -> times

    def login(self, given: str, address: str) -> str | None:
        """A new session ID for the right token; None (and counted) otherwise."""
        now = self.clock()
        recent = [t for t in self._failures.get(address, []) if now - t < FAILURE_WINDOW_S]
        if len(recent) >= FAILURES_ALLOWED:
            self._failures[address] = recent
            return None  # locked out for the window, even with the right token
        if not same_secret(given, self.token):
            self._failures[address] = [*recent, now]
            return None
        self._failures.pop(address, None)
        self._expire(now)
        session = secrets.token_urlsafe(32)
        self._sessions[session] = now + SESSION_S
        return session

    def valid(self, session: str | None, bearer: str | None = None) -> bool:
        if bearer is not None and same_secret(bearer, self.token):
            return True
        if not session:
            return False
        expiry = self._sessions.get(session)
        return expiry is not None and expiry > self.clock()

    def logout(self, session: str | None) -> None:
        if session:
            self._sessions.pop(session, None)

    def _expire(self, now: float) -> None:
        for sid in [s for s, expiry in self._sessions.items() if expiry <= now]:
            del self._sessions[sid]
