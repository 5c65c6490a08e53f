"""Reading primitives for routes.toml: typed reads that record problems, value checks.

Problems are collected, not raised, so the operator sees every mistake in one run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import phonenumbers

from switchboard.routing import ROUTE_KINDS, Values

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
PROMPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")  # a file name, never a path
# BCP-47 language[-subtags], or Deepgram's "multi" (code-switching) mode.
LANGUAGE = re.compile(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*|multi")
# An environment variable whose name ends in _PIN: a route can then never point the PIN
# check at another secret (LIVEKIT_API_SECRET...) and turn it into a guessing oracle.
PIN_ENV = re.compile(r"[A-Z][A-Z0-9_]{0,58}_PIN")
PIN_ATTEMPTS = (1, 10)  # more than 10 guesses per call would make a short PIN guessable
# sip.* attributes the Caller turns into fields: match those fields instead.
SIP_FIELDS = {
    "sip.phoneNumber": "caller_number",
    "sip.trunkPhoneNumber": "called_number",
    "sip.trunkID": "trunk_id",
    "sip.ruleID": "rule_id",
}
_PREFIX = re.compile(r"\+[1-9][0-9]{0,14}")
_E164_FIX = "write + country code + number, digits only, e.g. +15105550100"


@dataclass(slots=True)
class Problems:
    """Every problem found so far, each one naming the file, where in it, and the fix."""

    source: str
    items: list[str] = field(default_factory=list)

    def add(self, where: str, key: str | None, problem: str, fix: str) -> None:
        at = f", field '{key}'" if key else ""
        self.items.append(f"{self.source}: {where}{at}: {problem}\n  fix: {fix}")

    def unknown_key(self, where: str, key: str, valid: Collection[str], parent: str = "") -> None:
        fix = suggest(key, valid).strip() or f"remove it; valid keys: {', '.join(valid)}"
        self.add(where, parent + key, "unknown key", fix)


def suggest(value: str, valid: Collection[str]) -> str:
    """A "did you mean" hint for a typo, or "" when nothing is close."""
    close = difflib.get_close_matches(value, list(valid), n=1)
    return f"did you mean '{close[0]}'? " if close else ""


def _e164(value: str) -> tuple[str, str] | None:
    # phonenumbers also accepts "+1 510-555-0100"; we need the canonical digits-only form
    # because matching compares strings exactly with sip.* values, which are E.164.
    try:
        ok = phonenumbers.is_possible_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        ok = False
    return None if ok and re.fullmatch(r"\+[0-9]+", value) else ("not an E.164 number", _E164_FIX)


def _region(value: str) -> tuple[str, str] | None:
    if value in phonenumbers.SUPPORTED_REGIONS:
        return None
    hint = f'"{value.upper()}"' if value.upper() in phonenumbers.SUPPORTED_REGIONS else '"GB"'
    return "not a known region code", f"use an ISO 3166 two-letter code in capitals, e.g. {hint}"


def _rule(ok: Callable[[str], object], problem: str, fix: str) -> Callable[[str], Any]:
    return lambda v: None if ok(v) else (problem, fix)


# What each string (or list of strings) match field accepts.
ITEM_CHECKS: Mapping[str, Callable[[str], tuple[str, str] | None]] = MappingProxyType(
    {
        "kind": _rule(
            ROUTE_KINDS.__contains__,
            "not a caller kind",
            'use "sip" (phone callers) or "standard" (web and app callers)',
        ),
        "called_number": _e164,
        "caller_number": _e164,
        "caller_prefix": _rule(
            _PREFIX.fullmatch, "not a number prefix", 'write "+" and the leading digits, e.g. "+44"'
        ),
        "caller_region": _region,
        "trunk_id": _rule(str.strip, "empty", 'write the trunk ID, e.g. "ST_abc123"'),
        "rule_id": _rule(str.strip, "empty", 'write the dispatch rule ID, e.g. "SDR_abc123"'),
    }
)


class Reader:
    """One [[route]] table; each read records a problem and returns None when bad."""

    def __init__(self, problems: Problems, where: str, data: dict[str, Any]) -> None:
        self.problems, self.where, self.data, self.ok = problems, where, data, True

    def fail(self, key: str, problem: str, fix: str) -> None:
        self.ok = False
        self.problems.add(self.where, key, problem, fix)

    def keys(self, data: Mapping[str, Any], valid: Collection[str], parent: str = "") -> None:
        for key in data:
            if key not in valid:
                self.ok = False
                self.problems.unknown_key(self.where, key, valid, parent)

    def text(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            self.fail(key, f"expected a non-empty string, got {value!r}", f'write {key} = "..."')
            return None
        return value

    def integer(self, key: str, value: Any, low: int, high: int) -> int | None:
        if value is None:
            return None
        # TOML true/false are Python bools, which are ints: refuse them explicitly.
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            fix = f"write {key} = {low}, or another whole number up to {high}, without quotes"
            self.fail(key, f"expected a whole number from {low} to {high}, got {value!r}", fix)
            return None
        return value

    def strings(self, key: str, value: Any, *, one: bool = False) -> Values | None:
        """A list of strings; with ``one``, a single string is accepted as a list of one."""
        if value is None:
            return None
        if one and isinstance(value, str):
            value = [value]
        form = f'{key} = "..." or {key} = ["...", "..."]' if one else f'{key} = ["...", "..."]'
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, f"expected {'a string or ' if one else ''}a list of strings", form)
            return None
        if one and not value:
            self.fail(key, "is an empty list, which no call matches", f"remove it, or {form}")
            return None
        if dupes := sorted({v for v in value if value.count(v) > 1}):
            self.fail(key, f"lists {dupes} more than once", "list each value once")
        return tuple(value)

    def checked(self, key: str, value: Any) -> Values | None:
        values = self.strings(key, value, one=True)
        for v in values or ():
            if bad := ITEM_CHECKS[key.removeprefix("match.")](v):
                self.fail(key, f"{v!r} is {bad[0]}", bad[1])
        return values

    def table(self, key: str, value: Any) -> Mapping[str, Values]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, dict):
            name = key.rpartition(".")[2]
            self.fail(key, "expected a table", f'write {name} = {{ name = "value" }}')
            return MappingProxyType({})
        for k, v in value.items():
            if isinstance(v, dict):  # TOML reads a.b = "x" as a nested table
                fix = f'quote names with dots: "{k}.{next(iter(v), "")}" = "..."'
                self.fail(f"{key}.{k}", "is a nested table", fix)
        value = {k: v for k, v in value.items() if not isinstance(v, dict)}
        read = {k: self.strings(f"{key}.{k}", v, one=True) for k, v in value.items()}
        return MappingProxyType({k: v for k, v in read.items() if v is not None})
