"""The caller directory's values and the pure rules that check them.

Numbers arrive from the SIP service and from operators' CSV files: both untrusted. A
number is accepted only if it is made of digits and the usual separators, and it is
stored in E.164 (``+442071234567``) so every spelling of a number finds the same entry.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import phonenumbers

# Digits, an optional leading "+", and separators people write; nothing else. Anything
# more (letters, ";", control characters) is not a number, whatever phonenumbers makes of
# it: its parser is lenient and would extract digits from "+44 20 7123 4567 drop".
_NUMBER_SHAPE = re.compile(r"\+?[0-9 ().\-/]{1,40}")
# What carriers put in the From header when the caller withheld the number.
_WITHHELD = frozenset({"anonymous", "restricted", "private", "unavailable", "unknown"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# BCP-47: language, optional script, optional region, variants (RFC 5646, simplified).
_BCP47 = re.compile(
    r"(?P<lang>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?(?P<rest>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
)


class InvalidNumberError(ValueError):
    """Not a phone number we accept; the message says why (without echoing the input)."""


def is_withheld(raw: str | None) -> bool:
    """No number at all: missing, empty, or a carrier's placeholder such as "anonymous"."""
    if raw is None:
        return True
    value = raw.strip().lower().removeprefix("sip:").removeprefix("tel:")
    return not value or value in _WITHHELD


def normalize_number(raw: str, *, default_region: str | None = None) -> str:
    """``raw`` in E.164. National numbers need ``default_region`` (e.g. "US", "GB")."""
    if _CONTROL.search(raw):
        raise InvalidNumberError("contains control characters")
    value = raw.strip(" ")
    if value[:4].lower() == "tel:":
        value = value[4:].strip(" ")
    if not _NUMBER_SHAPE.fullmatch(value):
        raise InvalidNumberError("only digits, a leading '+', spaces and - ( ) . / are allowed")
    if not value.startswith("+") and not default_region:
        raise InvalidNumberError("national number without a default region (start it with +)")
    try:
        parsed = phonenumbers.parse(value, (default_region or "").upper() or None)
    except phonenumbers.NumberParseException as e:
        raise InvalidNumberError(
            f"not a phone number ({_PARSE_ERRORS.get(e.error_type, e)})"
        ) from None
    # Possible (right length for its country) rather than valid (a range known to be in
    # service): the metadata ages, and a caller must not become "invalid" because of it.
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumberError("not a possible number for its country (wrong length?)")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_PARSE_ERRORS: Mapping[int, str] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.NumberParseException.NOT_A_NUMBER: "no digits",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
    phonenumbers.NumberParseException.TOO_LONG: "too long",
}


def check_region(raw: str) -> str:
    """A region code phonenumbers knows ("us" -> "US"); ValueError otherwise."""
    region = raw.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{raw!r} is not a region code (two letters, e.g. US, GB, FR)")
    return region


@functools.lru_cache(maxsize=512)  # a file repeats a handful of tags 100,000 times
def normalize_language(raw: str) -> str:
    """A BCP-47 tag in its canonical case ("en-gb" -> "en-GB"); ValueError if not one."""
    match = _BCP47.fullmatch(raw.strip())
    if not match:
        raise ValueError("not a BCP-47 language tag (e.g. en, en-GB, zh-Hant-TW)")
    parts = [match["lang"].lower()]
    if match["script"]:
        parts.append(match["script"].title())
    if match["region"]:
        parts.append(match["region"].upper())
    return "-".join(parts) + match["rest"].lower()


def check_text(value: str, *, limit: int, multiline: bool = False) -> str:
    """``value`` stripped; ValueError if too long or holding control characters."""
    value = value.strip()
    if len(value) > limit:
        raise ValueError(f"longer than {limit} characters")
    if (_CONTROL_BUT_LINES if multiline else _CONTROL).search(value):
        raise ValueError("contains control characters")
    return value


def freeze_json(value: Any) -> Any:
    """JSON data made immutable: objects become read-only mappings, arrays tuples."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): freeze_json(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(freeze_json(v) for v in value)
    return value


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """One known caller. ``extra`` holds the operator's custom fields (JSON object)."""

    number: str  # E.164
    name: str | None = None
    account_id: str | None = None
    tier: str | None = None
    language: str | None = None  # BCP-47
    notes: str | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def as_row(self, updated_at: float) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "account_id": self.account_id,
            "tier": self.tier,
            "language": self.language,
            "notes": self.notes,
            "extra": thaw_json(self.extra),
            "updated_at": updated_at,
        }

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> DirectoryEntry:
        extra = row["extra"]
        return cls(
            number=row["number"],
            name=row["name"],
            account_id=row["account_id"],
            tier=row["tier"],
            language=row["language"],
            notes=row["notes"],
            extra=freeze_json(extra if isinstance(extra, Mapping) else {}),
        )


def thaw_json(value: Any) -> Any:
    """The inverse of ``freeze_json``: plain dicts and lists for the JSON encoder."""
    if isinstance(value, Mapping):
        return {k: thaw_json(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [thaw_json(v) for v in value]
    return value
