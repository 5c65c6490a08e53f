"""Phone numbers: E.164 reading, regions and masking, used by every layer.

Numbers arrive from the SIP service, from callers' words and from operators' files: all
untrusted. Here they are read strictly (digits and the usual separators, nothing else),
stored in E.164 (``+442071234567``) so every spelling finds the same entry, and masked
wherever a person or a log sees them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import phonenumbers

E164 = re.compile(r"\+[1-9][0-9]{1,14}")  # ASCII digits only: no unicode look-alikes
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Digits, an optional leading "+", and separators people write; nothing else. Anything
# more (letters, ";", control characters) is not a number, whatever phonenumbers makes of
# it: its parser is lenient and would extract digits from "+44 20 7123 4567 drop".
_NUMBER_SHAPE = re.compile(r"\+?[0-9 ().\-/]{1,40}")
# What carriers put in the From header when the caller withheld the number.
_WITHHELD = frozenset({"anonymous", "restricted", "private", "unavailable", "unknown"})


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


def region_of(number: str | None) -> str | None:
    """ISO region of an E.164 number, or None for anything unparseable or unassigned."""
    if not number or not E164.fullmatch(number):
        return None  # also bounds the input phonenumbers sees: at most 16 ASCII chars
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(parsed)
    return region if region and region != "ZZ" else None


_DIGITS = re.compile(r"\d")
# A full international number has 11 digits or more; shorter ones keep at most half.
_LONG = 11
# What ``mask_number`` makes: at most 4 digits either side of the dots, nothing else.
_MASKED = re.compile(r"\+?\d{0,4}•+\d{0,4}")
# A number inside free text: 7 digits or more, maybe with a "+" and the spaces, hyphens and
# brackets people write between groups. Not dots, and not next to a decimal point: a
# timestamp (``1795959970.79``) is not a number to hide.
_NUMBER_IN_TEXT = re.compile(r"(?<!\d)(?<!\d\.)\+?\d(?:[ ()\-]{0,2}\d){6,}(?!\d)(?!\.\d)")


def mask_number(number: str | None) -> str | None:
    """Mask a phone number for logs and listings.

    ``+442071234567`` becomes ``+4420••••4567``: a full international number (11 digits or
    more) keeps its country prefix and last 4 digits. A shorter one (a national number, an
    extension, a short code) keeps at most half its digits, the last ones
    (``5551234`` becomes ``••••234``), so a masked value never reveals a whole number, nor
    most of one.
    """
    if not number:
        return None
    if _MASKED.fullmatch(number):
        return number  # masked already (a stored record's): masking it again would hide more
    digits = _DIGITS.findall(number)
    if not digits:
        return "•••"  # a SIP user name rather than a number: still not ours to print
    plus = "+" if number.strip().startswith("+") else ""
    n = len(digits)
    if n >= _LONG:
        return plus + "".join(digits[:4]) + "••••" + "".join(digits[-4:])
    shown = n // 2
    tail = min(4, shown)
    head = "".join(digits[: shown - tail])
    hidden = "••••" if n >= 7 else "•" * (n - shown)
    return plus + head + hidden + ("".join(digits[-tail:]) if tail else "")


def mask_numbers_in(text: str) -> str:
    """``text`` with every phone number in it masked (``mask_number``): for what comes
    from outside and is kept (transcripts, tool arguments, participant identities such
    as ``sip_+447700900123``, log lines). Numbers spoken as words ("plus four four...")
    are not recognised."""
    return _NUMBER_IN_TEXT.sub(lambda m: mask_number(m[0]) or "", text)
