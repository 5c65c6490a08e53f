"""Text from outside made safe to show: on an operator's terminal, in an error message.

CSV cells and header names, config values, caller data and server replies are untrusted.
Printed raw, an escape sequence in one can drive the terminal (move the cursor, retitle
the window, hide the lines above it) and a bidi override (U+202E...) can make a line read
differently from what it says. ``printable`` escapes every such character visibly, the
way Python's repr does; ``safe_json`` does the same to a JSON document, as JSON escapes;
``redact_urls`` hides the password of any URL (``postgresql://app:s3cret@db/x``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

# Control (C0, C1, DEL), format (bidi embeddings, overrides and isolates, zero-width
# characters, the BOM), line/paragraph separators, and lone surrogates (undecodable bytes).
_UNSAFE = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s/]+@")


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE


def _escaped(char: str) -> str:
    code = ord(char)
    return (
        f"\\x{code:02x}"
        if code < 0x100
        else f"\\u{code:04x}"
        if code < 0x10000
        else f"\\U{code:08x}"
    )


def printable(value: object, *, keep: str = "") -> str:
    """``str(value)`` with every control, format or separator character escaped
    (``\\x1b``, ``\\u202e``), except those in ``keep`` (e.g. "\\n" for a multi-line text)."""
    text = str(value)
    if text.isascii() and text.isprintable():
        return text  # the usual case, without a look at each character
    return "".join(_escaped(c) if c not in keep and _unsafe(c) else c for c in text)


def safe_json(document: Any, **dumps: Any) -> str:
    """``json.dumps(document, ensure_ascii=False, **dumps)`` with every unsafe character
    written as a JSON escape: the same document to a parser, harmless on a terminal."""
    text = json.dumps(document, ensure_ascii=False, **dumps)
    # JSON escapes control characters inside strings itself: a raw newline is indentation.
    return "".join(json.dumps(c)[1:-1] if c != "\n" and _unsafe(c) else c for c in text)


def redact_urls(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@`` replaced by ***."""
    return _URL_PASSWORD.sub(r"\1***@", text)


def shown(value: object, *, keep: str = "") -> str:
    """Both: what an error message or a CLI line prints of an outside value."""
    return printable(redact_urls(str(value)), keep=keep)


def shown_lines(value: object) -> str:
    """``shown``, keeping line breaks: for a multi-line error (ConfigError, a server's)."""
    return shown(value, keep="\n")
