"""The values routes.toml accepts: names, languages, PIN settings, match conditions.

Typed reads are the shared ``switchboard.config.reader``; these are the checks of single
values that only a route has.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import phonenumbers

from switchboard.config.reader import Table
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


def checked(t: Table, key: str) -> Values | None:
    """A match field: a string or a list of them, each checked by ``ITEM_CHECKS``."""
    values = t.strings(key, one=True)
    for v in values or ():
        if bad := ITEM_CHECKS[key](v):
            t.fail(key, f"{v!r} is {bad[0]}", bad[1])
    return values
