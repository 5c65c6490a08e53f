"""The one configuration error: every problem found, each naming where it is and the fix.

All configuration (the environment, routes.toml, policy.toml, telephony.toml) is checked
to the end before anything is reported, so an operator fixes every mistake in one round
instead of meeting them one run at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from switchboard.safe_text import shown

T = TypeVar("T")
NOT_THERE = "is not there"  # the problem of a configuration file that is missing


@dataclass(frozen=True, slots=True)
class Problem:
    """One mistake: the file (or "environment"), the table or route in it, the field,
    what is wrong and how to fix it."""

    source: str
    where: str  # e.g. '[[route]] #2 ("sales")'; "" when the problem sentence names it
    key: str | None  # the field within ``where``
    problem: str
    fix: str

    def __str__(self) -> str:
        # Every part may quote the file (a route name, a CSV header, a value): escaped, so
        # a crafted one cannot drive the terminal, and URLs shown without their password.
        source, where, key, problem, fix = map(
            shown, (self.source, self.where, self.key, self.problem, self.fix)
        )
        at = f", field '{key}'" if self.key else ""
        place = f"{where}{at}: " if self.where else ""
        return f"{source}: {place}{problem}\n  fix: {fix}"


class ConfigError(ValueError):
    """Every problem found in some configuration, in the order found.

    ``items`` holds them as values, ``problems`` as the lines shown to the operator.
    """

    def __init__(self, problems: Iterable[Problem], subject: str = "the configuration") -> None:
        self.items = tuple(problems)
        self.problems = tuple(map(str, self.items))
        self.subject = subject
        count = len(self.items)
        head = f"{count} problem{'' if count == 1 else 's'} in {subject}:"
        super().__init__("\n".join((head, *self.problems)))


def collect(load: Callable[[], T], problems: list[Problem], fix_missing: str) -> T | None:
    """``load()``, or None after adding its problems (a missing file is one): so that
    several files are checked in one run and all their problems reported together."""
    try:
        return load()
    except ConfigError as e:
        problems.extend(e.items)
    except FileNotFoundError as e:
        problems.append(Problem(str(e.filename), "", None, NOT_THERE, fix_missing))
    return None


def missing_fix(variable: str, option: str | None = None) -> str:
    """How to fix a missing configuration file whose path comes from ``variable``."""
    also = f" (or {option})" if option else ""
    return f"create it, or point {variable}{also} at the file"
