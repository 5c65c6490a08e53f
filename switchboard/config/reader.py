"""Typed reads from TOML tables that record problems instead of raising.

One reader for routes.toml, policy.toml and telephony.toml: every read checks the type,
records a problem naming the file, the table and the field with a fix, and returns a
fallback, so the loader goes on and the operator sees every mistake in one run.
"""

from __future__ import annotations

import copy
import difflib
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Self

from switchboard.config.errors import ConfigError, Problem
from switchboard.routing import Values


def suggest(value: str, valid: Collection[str]) -> str:
    """A "did you mean" hint for a typo, or "" when nothing is close."""
    close = difflib.get_close_matches(value, list(valid), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


@dataclass(slots=True)
class Problems:
    """Every problem found so far in one file."""

    source: str
    items: list[Problem] = field(default_factory=list)

    def add(self, where: str, key: str | None, problem: str, fix: str) -> None:
        self.items.append(Problem(self.source, where, key, problem, fix))

    def unknown_key(
        self, where: str, key: str, valid: Collection[str], fix: str | None = None
    ) -> None:
        fix = fix or suggest(key, valid).strip() or f"remove it; valid keys: {', '.join(valid)}"
        self.add(where, key, "unknown key", fix)

    def check(self, subject: str) -> None:
        """Raise one ConfigError with every problem, if there is any."""
        if self.items:
            raise ConfigError(self.items, subject)


def parse_toml(problems: Problems, text: str, subject: str) -> dict[str, Any]:
    """The document; a syntax error is reported alone (nothing else can be read)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        problems.add("the file", None, f"is not valid TOML ({e})", "fix the syntax at that line")
        raise ConfigError(problems.items, subject) from None


class Table:
    """One TOML table. Each read returns the value, or ``None`` (or the default) after
    recording a problem; ``ok`` turns False on the first one. ``within`` reads a nested
    table, naming its fields ``outer.inner``."""

    def __init__(
        self, problems: Problems, where: str, data: Mapping[str, Any], prefix: str = ""
    ) -> None:
        self.problems, self.where, self.data, self.prefix = problems, where, data, prefix
        self.ok = True
        self._parent: Table | None = None

    def within(self, key: str, data: Mapping[str, Any]) -> Self:
        inner = copy.copy(self)  # a subclass's own state (e.g. the environment) comes too
        inner.data, inner.prefix, inner.ok, inner._parent = data, f"{self.prefix}{key}.", True, self
        return inner

    def expand(self, key: str, value: str) -> str | None:
        """A hook for every string read (telephony.toml expands ${VAR} here)."""
        return value

    def _spoil(self) -> None:
        table: Table | None = self
        while table is not None:
            table.ok = False
            table = table._parent

    def fail(self, key: str | None, problem: str, fix: str) -> None:
        self._spoil()
        name = f"{self.prefix}{key}" if key else self.prefix.rstrip(".") or None
        self.problems.add(self.where, name, problem, fix)

    def keys(self, valid: Collection[str], fixes: Mapping[str, str] | None = None) -> None:
        """Report keys that are not in ``valid``, with a "did you mean" when one is close."""
        for key in self.data:
            if key not in valid:
                self._spoil()
                fix = (fixes or {}).get(key)
                self.problems.unknown_key(self.where, self.prefix + key, valid, fix)

    def text(self, key: str, default: str | None = None, *, empty: bool = False) -> str | None:
        """A string (non-empty unless ``empty``); ``default``, checked too, when absent."""
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not (empty or value.strip()):
            kind = "a string" if empty else "a non-empty string"
            self.fail(key, f"expected {kind}, got {value!r}", f'write {key} = "..."')
            return None
        return self.expand(key, value)

    def required(self, key: str, *, empty: bool = False) -> str | None:
        if key not in self.data:
            self.fail(key, "missing required field", f'add {key} = "..."')
            return None
        return self.text(key, empty=empty)

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            fix = f"write {key} = true (or false), without quotes"
            self.fail(key, f"expected true or false, got {value!r}", fix)
            return default
        return value

    def integer(self, key: str, default: int, low: int = 0, high: int | None = None) -> int:
        """A whole number from ``low`` to ``high`` (no upper bound when None)."""
        value = self.data.get(key, default)
        span = f" from {low} to {high}" if high is not None else ""
        problem = f"expected a whole number{span}, got {value!r}"
        if high is None:
            fix = f"write {key} = 3"
        else:
            fix = f"write {key} = {low}, or another whole number up to {high}, without quotes"
        # TOML true/false are Python bools, which are ints: refuse them explicitly.
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, problem, fix)
        elif value < 0 and low == 0:
            self.fail(key, f"is negative ({value})", "use 0 (never) or a positive number")
        elif value < low or (high is not None and value > high):
            self.fail(key, problem, fix)
        else:
            return value
        return default

    def strings(self, key: str, *, one: bool = False) -> Values | None:
        """A list of strings; with ``one``, a single string is accepted as a list of one."""
        value = self.data.get(key)
        if value is None:
            return None
        if one and isinstance(value, str):
            value = [value]
        form = f'{key} = "..." or {key} = ["...", "..."]' if one else f'{key} = ["...", "..."]'
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            kind = "a string or a list of strings" if one else "a list of strings"
            self.fail(key, f"expected {kind}, got {value!r}", f"write {form}")
            return None
        if one and not value:
            self.fail(key, "is an empty list, which no call matches", f"remove it, or {form}")
            return None
        expanded = [self.expand(key, v) for v in value]
        items = [v for v in expanded if v is not None]
        if dupes := sorted({v for v in items if items.count(v) > 1}):
            self.fail(
                key, f"duplicate entries: lists {dupes} more than once", "list each value once"
            )
        return tuple(items)

    def pairs(self, key: str) -> Mapping[str, str]:
        """A table of strings, e.g. ``{ "X-Lang" = "lang" }``."""
        value = self.data.get(key, {})
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.fail(key, "expected a table of strings", f'write {key} = {{ "a" = "b" }}')
            return MappingProxyType({})
        read = {k: self.expand(key, v) for k, v in value.items()}
        return MappingProxyType({k: v for k, v in read.items() if v is not None})

    def value_lists(self, key: str) -> Mapping[str, Values]:
        """A table whose values are a string or a list of them: ``{ name = "value" }``."""
        value = self.data.get(key)
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            self.fail(key, "expected a table", f'write {key} = {{ name = "value" }}')
            return MappingProxyType({})
        inner = self.within(key, value)
        for k, v in value.items():
            if isinstance(v, dict):  # TOML reads a.b = "x" as a nested table
                fix = f'quote names with dots: "{k}.{next(iter(v), "")}" = "..."'
                inner.fail(k, "is a nested table", fix)
        read = {k: inner.strings(k, one=True) for k, v in value.items() if not isinstance(v, dict)}
        return MappingProxyType({k: v for k, v in read.items() if v is not None})
