"""The caller directory's values and the pure rules that check them.

Everything in an entry comes from an operator's file: names, languages and notes are
checked here (length, control characters, BCP-47); the number itself is read by
``switchboard.numbers``, which stores it in E.164.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINES = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
# BCP-47: language, optional script, optional region, variants (RFC 5646, simplified).
_BCP47 = re.compile(
    r"(?P<lang>[A-Za-z]{2,3})(?:-(?P<script>[A-Za-z]{4}))?"
    r"(?:-(?P<region>[A-Za-z]{2}|[0-9]{3}))?(?P<rest>(?:-(?:[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}))*)"
)


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
