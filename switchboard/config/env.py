"""Declaring an environment variable: its name, default, help and parser, in one place.

A parser turns the variable's text into its value, or raises ValueError with the words
that say what is wrong (``must be between 1 and 600``); its ``accepts`` says what it
takes, for the reference and the fix. ``read`` records a problem instead of raising, so
every bad variable is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any, get_type_hints
from urllib.parse import urlparse

import phonenumbers

from switchboard.config.errors import Problem
from switchboard.dialing.policy import Destination, destination_problem

SOURCE = "environment"


# --- parsers: text to a value, or ValueError with the sentence that says why ----------


@dataclass(frozen=True, slots=True)
class Text:
    accepts: str = ""  # nothing worth saying

    def __call__(self, raw: str) -> str:
        return raw


@dataclass(frozen=True, slots=True)
class OrNone:
    """Empty means unset (None)."""

    accepts: str = ""

    def __call__(self, raw: str) -> str | None:
        return raw or None


@dataclass(frozen=True, slots=True)
class Number:
    low: float
    high: float
    whole: bool = False
    scale: float = 1  # e.g. milliseconds read into seconds

    @property
    def accepts(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        return f"{kind} from {self.low:g} to {self.high:g}"

    def __call__(self, raw: str) -> float:
        try:
            number = int(raw) if self.whole else float(raw)
        except ValueError:
            raise ValueError("is not a whole number" if self.whole else "is not a number") from None
        if not self.low <= number <= self.high:
            raise ValueError(f"must be between {self.low:g} and {self.high:g}")
        return number * self.scale if self.scale != 1 else number


@dataclass(frozen=True, slots=True)
class Choice:
    options: tuple[str, ...]

    @property
    def accepts(self) -> str:
        *first, last = self.options
        return f"one of {', '.join(self.options)}" if first[1:] else f"{first[0]} or {last}"

    def __call__(self, raw: str) -> str:
        if raw in self.options:
            return raw
        raise ValueError(f"must be {self.accepts}")


@dataclass(frozen=True, slots=True)
class Flag:
    accepts: str = "true or false"

    def __call__(self, raw: str) -> bool:
        value = raw.strip().lower()
        if value in ("true", "1", "yes"):
            return True
        if value in ("false", "0", "no", ""):
            return False
        raise ValueError("must be true or false")


@dataclass(frozen=True, slots=True)
class Url:
    schemes: tuple[str, ...]
    hint: str  # what to write, e.g. "start with wss://"
    optional: bool = False  # empty means unset (None), not ""

    @property
    def accepts(self) -> str:
        return f"a URL ({', '.join(s + '://' for s in self.schemes)})"

    def __call__(self, raw: str) -> str | None:
        if raw and urlparse(raw).scheme not in self.schemes:
            raise ValueError(f"must {self.hint}")
        return (raw or None) if self.optional else raw


@dataclass(frozen=True, slots=True)
class Pattern:
    regex: re.Pattern[str]
    rule: str  # the sentence for a value that does not match

    @property
    def accepts(self) -> str:
        return self.rule

    def __call__(self, raw: str) -> str:
        if not self.regex.fullmatch(raw):
            raise ValueError(f"must be {self.rule}")
        return raw


@dataclass(frozen=True, slots=True)
class ReachableUri:
    """A SIP or tel URI we may send calls to: ``Pattern``, and no reading of its user part
    restricted (``sip:%2B1-900...@``, ``tel:112``: see ``dialing.uris``). There is no
    override here: UNSAFE_ALLOW_RESTRICTED_NUMBERS is policy.toml's, for named dials."""

    pattern: Pattern

    @property
    def accepts(self) -> str:
        return self.pattern.accepts

    def __call__(self, raw: str) -> str:
        uri = self.pattern(raw)
        problem = destination_problem(Destination("uri", "", sip_uri=uri)).problem if uri else None
        if problem is not None:
            what = problem.value.replace("_", " ")
            raise ValueError(f"reaches a restricted number ({what}), which is never dialled")
        return uri


@dataclass(frozen=True, slots=True)
class Region:
    accepts: str = "an ISO 3166 country code, e.g. US or GB"

    def __call__(self, raw: str) -> str:
        if raw.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("is not a known region code (use e.g. US or GB)")
        return raw.upper()


@dataclass(frozen=True, slots=True)
class Folder:
    """A path; empty means ``default``."""

    default: Path | None = None
    accepts: str = ""

    def __call__(self, raw: str) -> Path | None:
        return Path(raw) if raw else self.default


@dataclass(frozen=True, slots=True)
class Pairs:
    accepts: str = "name=value pairs separated by commas"

    def __call__(self, raw: str) -> Mapping[str, str]:
        pairs: dict[str, str] = {}
        for item in filter(None, (part.strip() for part in raw.split(","))):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"has {item!r}, which is not name=value (e.g. lang=es)")
            pairs[key.strip()] = value.strip()
        return MappingProxyType(pairs)


Parser = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class EnvVar:
    """One environment variable: the single place its name, default, help and parser
    (with its range) are written."""

    name: str
    default: str
    parse: Parser
    help: str
    part: str = ""  # the settings part it fills, e.g. "calls" (set in ``ENV_VARS``)

    @property
    def accepts(self) -> str:
        return str(getattr(self.parse, "accepts", ""))


def declarations(part: type) -> dict[str, EnvVar]:
    """A settings part's fields and the variable each is read from (its annotation)."""
    hints = get_type_hints(part, include_extras=True)
    return {f.name: hints[f.name].__metadata__[0] for f in fields(part)}


def read(var: EnvVar, env: Mapping[str, str], problems: list[Problem]) -> Any:
    """One variable's value (its default when unset or empty), or its default's value
    after recording a problem that names the variable and the fix."""
    raw = (env.get(var.name) or var.default).strip()
    try:
        return var.parse(raw)
    except ValueError as e:
        fix = f"set {var.name} to {var.accepts}, or remove it for the default ({var.default!r})"
        problems.append(Problem(SOURCE, "", var.name, f"{var.name}={raw!r} {e}", fix))
        return var.parse(var.default)
