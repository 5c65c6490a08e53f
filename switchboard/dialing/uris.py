"""What a SIP or tel URI dials: its user part, spelled every way a carrier could read it.

A URI's user part goes to the carrier as dialled digits, so ``sip:911@trunk`` calls 911,
and so do ``sip:+1-911@...``, ``sip:%2B1911@...`` and ``sip:001911@...``. Here the user
part is percent-decoded and its visual separators (RFC 3966: - . ( ), and spaces) are
dropped; when what is left is digits, ``spellings`` lists the numbers a carrier could take
it for (as written, with a "+", after an international prefix). ``dialing.policy``
classifies each, and refuses the destination when any of them is restricted: the carrier,
not us, picks the reading.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_URI = re.compile(r"sips?:(?P<user>[^@]*)@.*|tel:(?P<tel>[^;]*)(?:;.*)?", re.ASCII | re.I)
_SEPARATORS = re.compile(r"[\s\-.()/]")
DIGITS = re.compile(r"\+?[0-9]+", re.ASCII)
# International call prefixes a carrier may take in place of "+": 011 (North America),
# 00 (most of the rest of the world).
_IDD = ("011", "00")


def uri_user(uri: str) -> str | None:
    """The dialled part of a sip:/sips:/tel: URI, percent-decoded, separators dropped;
    None for anything that is not such a URI."""
    found = _URI.fullmatch(uri.strip())
    if found is None:
        return None
    user = found.group("user") if found.group("user") is not None else found.group("tel")
    return _SEPARATORS.sub("", unquote(user or "", errors="replace"))


def spellings(digits: str) -> tuple[str, ...]:
    """The numbers a carrier could take ``digits`` (a DIGITS match) for: as written, then
    with a "+", then after an international prefix. A "+" leaves one reading."""
    if digits.startswith("+"):
        return (digits,)
    found = [digits, "+" + digits]
    found += ["+" + digits[len(p) :] for p in _IDD if digits.startswith(p) and len(digits) > len(p)]
    return tuple(found)
