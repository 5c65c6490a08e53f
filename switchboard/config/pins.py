"""The PIN of every route that asks for one, read from the environment once, at start.

routes.toml names the variable (``pin_env``), never the PIN. The worker reads each one
when it starts and refuses to start if one is unset or not a PIN, so a call never reads
the environment and a line is never left open by a missing variable. The values are
secrets: no problem quotes them, and ``RoutePins`` never shows them in its repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from types import MappingProxyType

from switchboard.config.errors import Problem
from switchboard.config.reader import Problems
from switchboard.routing import RouteTable

# A PIN is digits only, 4 to 12 of them: every keypad has them, and a short PIN is weak.
PIN_VALUE = re.compile(r"[0-9]{4,12}")


@dataclass(frozen=True, slots=True)
class RoutePins:
    """Route name → its PIN, for the routes that have ``pin_env``."""

    by_route: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    def get(self, route: str) -> str | None:
        """The route's PIN, or None (no PIN configured: the gate then refuses the call
        rather than let anyone in)."""
        return self.by_route.get(route)


def read_pins(routes: RouteTable, environ: Mapping[str, str]) -> tuple[RoutePins, list[Problem]]:
    """Every route's PIN, and the routes whose variable is unset or not a PIN (pure)."""
    problems = Problems(routes.source)
    pins: dict[str, str] = {}
    for route in routes.routes:
        name = route.pin_env
        if name is None:
            continue
        where = f'route "{route.name}"'
        value = environ.get(name, "")
        if not value:
            fix = f"set {name} to the PIN (4 to 12 digits) in the environment or .env.local"
            problems.add(where, "pin_env", f"{name} is not set", fix)
        elif not PIN_VALUE.fullmatch(value):
            # The value is never quoted: it is, or was meant to be, a secret.
            problem = f"{name} is not a PIN (value not shown)"
            problems.add(where, "pin_env", problem, "use 4 to 12 digits, 0-9 only")
        else:
            pins[route.name] = value
    return RoutePins(MappingProxyType(pins)), problems.items


# The most used 4-digit PINs (repeats and runs are caught by rule below): the first ones a
# guesser tries.
_COMMON = frozenset({"1212", "1004", "2000", "6969", "1122", "1313", "2001", "1010", "2580"})


def weakness(pin: str) -> str | None:
    """Why a PIN is among the first a guesser tries, or None."""
    if len(set(pin)) == 1:
        return "one digit repeated"
    steps = {(int(b) - int(a)) % 10 for a, b in pairwise(pin)}
    if steps in ({1}, {9}):
        return "a run of consecutive digits"
    for size in range(2, len(pin) // 2 + 1):
        if len(pin) % size == 0 and pin == pin[:size] * (len(pin) // size):
            return "a short group repeated"
    return "one of the most used PINs" if pin in _COMMON else None


def weak_pins(routes: RouteTable, environ: Mapping[str, str]) -> list[Problem]:
    """Warnings (not errors: the operator may have reasons) for routes whose PIN is set
    and weak. The PIN is never quoted, only why it is weak."""
    problems = Problems(routes.source)
    for route in routes.routes:
        value = environ.get(route.pin_env or "", "")
        if route.pin_env and PIN_VALUE.fullmatch(value) and (why := weakness(value)):
            fix = f"set {route.pin_env} to 6 or more digits with no pattern"
            problems.add(f'route "{route.name}"', "pin_env", f"{route.pin_env} is weak: {why}", fix)
    return problems.items
