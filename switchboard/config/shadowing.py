"""Which routes can never be reached: a sound, conservative "covers" check.

Route A (earlier) covers route B (later) when every call B matches, A matches too, so
B never runs. Deciding that exactly is a satisfiability problem (regions, prefixes and
numbers overlap in ways only the numbering plan knows), so we report only what we can
prove: each condition of A must be implied by a condition B has. A false alarm would
make operators distrust the checker; a missed case only loses a warning.

A condition of A on field ``f`` is implied by B when:

- B has ``f`` too and B's allowed values are a subset of A's (for ``caller_prefix``:
  each of B's prefixes starts with one of A's; for ``number_hidden``: the same value);
- or, across fields, B pins the value for certain:
  - B lists exact ``caller_number`` values and each of them satisfies A's
    ``caller_prefix`` / ``caller_region`` (both depend on the caller number only);
  - A requires ``number_hidden = false`` and B needs a number to be present
    (``caller_number``, ``caller_prefix`` or ``caller_region``);
  - A's ``kind`` allows "sip" and B requires ``number_hidden = true`` (only SIP
    callers can have a hidden number).

A with no conditions covers everything; such routes are reported on their own.
"""

from __future__ import annotations

from switchboard.caller import Caller
from switchboard.routing import Expected, Match, conditions, holds

_NEEDS_NUMBER = ("caller_number", "caller_prefix", "caller_region")


def covers(earlier: Match, later: Match) -> bool:
    """True only when certain that every call ``later`` matches, ``earlier`` matches."""
    own = dict(conditions(later))
    return all(_implied(path, expected, own, later) for path, expected in conditions(earlier))


def _implied(path: str, expected: Expected, own: dict[str, Expected], later: Match) -> bool:
    if path in own and _narrower(path, own[path], expected):
        return True
    if path in ("caller_prefix", "caller_region") and later.caller_number:
        return all(_number_holds(path, expected, n) for n in later.caller_number)
    if path == "number_hidden" and expected is False:
        return any(f in own for f in _NEEDS_NUMBER)
    if path == "kind" and not isinstance(expected, bool):
        return "sip" in expected and later.number_hidden is True
    return False


def _narrower(path: str, narrow: Expected, broad: Expected) -> bool:
    if isinstance(narrow, bool) or isinstance(broad, bool):
        return narrow == broad
    if path == "caller_prefix":
        return all(n.startswith(broad) for n in narrow)
    return set(narrow) <= set(broad)


def _number_holds(path: str, expected: Expected, number: str) -> bool:
    # Prefix and region read the caller's number only, so a stand-in caller is exact.
    return holds(path, expected, Caller(kind="sip", identity="", phone_number=number), None)
