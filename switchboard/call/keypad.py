"""Keypad digits (DTMF) on a call: read them, tell the model what was pressed, send them.

A phone's key presses reach the room as ``sip_dtmf_received`` events (``livekit.rtc.SipDTMF``:
``code``, ``digit``, ``participant``): the SIP service turns each RFC 4733 event from a SIP
leg into one data packet from that leg's participant. Digits are untrusted input, like
speech, and often secret (PINs, account numbers), so:

- nothing here logs a digit in clear: events carry ``mask_digits`` of them, or nothing;
- no key is ever mapped to an action in code: the model hears key presses as the caller's
  words (``keypress_text``) and picks tools as it does for speech, behind the same checks;
- only the caller's own presses are read: every participant has its own buffer, so a
  dialled leg or a web participant publishing DTMF cannot type into the caller's PIN
  (``switchboard.call.pin``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import Any, Protocol

from livekit import rtc

from switchboard.call.event_types import Keypress
from switchboard.call.events import EventLog

# RFC 4733 telephone-events 0..15, in code order (as livekit.rtc and the SIP service use).
DTMF_DIGITS = "0123456789*#ABCD"
# A read waits this long for the first key (after a prompt), then between keys.
READ_TIMEOUT_S = 10.0
READ_INTER_DIGIT_S = 5.0
KEYPAD_MAX_DIGITS = 32
KEYPAD_INTER_DIGIT_S = 1.5  # a menu choice is one key: answer it soon after the last press
BUFFER_DIGITS = 64  # per participant; a flood of presses is dropped beyond it


_KEYPRESS = re.compile(r"\[the caller pressed: ([0-9*#A-D ]+)\]")


# --- digits -----------------------------------------------------------------------------


def digit_of(digit: str, code: int) -> str | None:
    """The key of one SipDTMF event, or None for anything that is not one keypad key.

    The SIP service sends both the digit and its RFC 4733 code; the digit wins, and the
    code is used only when there is no digit. Any participant can publish DTMF with any
    text, hence the check.
    """
    key = digit.upper()
    if len(key) == 1 and key in DTMF_DIGITS:
        return key
    return DTMF_DIGITS[code] if not digit and 0 <= code < len(DTMF_DIGITS) else None


def dtmf_code(key: str) -> int:
    """The RFC 4733 event code of a key; ValueError for anything else."""
    if len(key) != 1 or key.upper() not in DTMF_DIGITS:
        raise ValueError(f"not a DTMF key: {key!r}")
    return DTMF_DIGITS.index(key.upper())


def mask_digits(digits: str) -> str:
    """Keys as they may be logged: how many, never which."""
    return "•" * len(digits)


def keypress_text(digits: str) -> str:
    """A completed key sequence as the caller's words for the model: ``[the caller
    pressed: 1]``. Keys are spaced so that "12" reads as two presses, not twelve. Only keypad
    characters can appear (the collector guarantees it), so nothing in it can instruct."""
    keys = " ".join(k for k in digits if k in DTMF_DIGITS)
    return f"[the caller pressed: {keys}]"


def mask_keypresses(text: str) -> str:
    """``text`` with every ``keypress_text`` in it masked: for transcripts and records,
    which otherwise keep the model's input in clear."""
    return _KEYPRESS.sub(
        lambda m: f"[the caller pressed: {mask_digits(m[1].replace(' ', ''))}]", text
    )


# --- reading key presses ----------------------------------------------------------------


class DtmfCollector:
    """Buffers every participant's key presses; ``read`` takes one participant's.

    One reader per participant at a time (the PIN gate, then the keypad forwarder): a lock
    makes a second reader wait, so it can never take digits meant for the first.
    """

    def __init__(self, room: rtc.EventEmitter[Any], *, buffer_digits: int = BUFFER_DIGITS) -> None:
        self._room = room
        self._size = buffer_digits
        self._buffers: dict[str, asyncio.Queue[str]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.dropped = 0  # presses ignored: not a key, no sender, or a full buffer
        room.on("sip_dtmf_received", self._on_dtmf)

    def close(self) -> None:
        self._room.off("sip_dtmf_received", self._on_dtmf)

    def _buffer(self, identity: str) -> asyncio.Queue[str]:
        return self._buffers.setdefault(identity, asyncio.Queue(self._size))

    def _on_dtmf(self, event: rtc.SipDTMF) -> None:
        key = digit_of(event.digit, event.code)
        identity = event.participant.identity if event.participant is not None else ""
        if key is None or not identity:
            self.dropped += 1
            return
        try:
            self._buffer(identity).put_nowait(key)
        except asyncio.QueueFull:
            self.dropped += 1

    def pending(self, identity: str) -> int:
        buffer = self._buffers.get(identity)
        return buffer.qsize() if buffer is not None else 0

    def clear(self, identity: str) -> None:
        buffer = self._buffers.get(identity)
        while buffer is not None and not buffer.empty():
            buffer.get_nowait()

    async def read(
        self,
        identity: str,
        max_digits: int,
        *,
        terminator: str | None = "#",
        timeout_s: float | None = READ_TIMEOUT_S,
        inter_digit_s: float = READ_INTER_DIGIT_S,
    ) -> str:
        """The next key sequence from ``identity``: digits until the terminator (not
        included), ``max_digits``, ``inter_digit_s`` without a press, or ``timeout_s``
        (None: no limit) before the first one. Presses made before the call are used
        first (type-ahead). "" when nothing but the terminator, or nothing, came."""
        lock = self._locks.setdefault(identity, asyncio.Lock())
        async with lock:
            buffer = self._buffer(identity)
            digits: list[str] = []
            wait = timeout_s
            while len(digits) < max_digits:
                try:
                    key = await asyncio.wait_for(buffer.get(), wait)
                except TimeoutError:
                    break
                if key == terminator:
                    break
                digits.append(key)
                wait = inter_digit_s
            return "".join(digits)


# --- key presses as the caller's words --------------------------------------------------


class Replier(Protocol):
    def interrupt(self) -> object: ...

    def generate_reply(self, *, user_input: str) -> object: ...


async def forward_keypresses(
    session: Replier,
    collector: DtmfCollector,
    identity: str,
    *,
    inter_digit_s: float = KEYPAD_INTER_DIGIT_S,
    events: EventLog | None = None,
    on_hold: Callable[[], bool] = lambda: False,
) -> None:
    """Until cancelled: each key sequence ``identity`` completes (``#`` or a pause) becomes
    a user turn, ``keypress_text``, as if the caller had said it; keys pressed while
    ``on_hold()`` are dropped (on hold, the session's agent is the warm transfer's, whose
    tools connect or cancel the transfer: never the caller's to press).

    A user turn, not instructions: key presses are the caller's input, no more trusted than
    their speech, and the model keeps them in its history like anything else said. A press
    also interrupts the agent, as speech does. Start it after the PIN gate, which must have
    taken the PIN's digits first (the collector's lock orders the two readers).
    """
    while True:
        keys = await collector.read(
            identity, KEYPAD_MAX_DIGITS, terminator="#", timeout_s=None, inter_digit_s=inter_digit_s
        )
        keys = keys or "#"  # with no time limit, "" means "#" alone: a key in its own right
        held = on_hold()
        if events is not None:
            events.emit(Keypress(identity=identity, digits=mask_digits(keys), ignored=held))
        if held:
            continue
        with contextlib.suppress(RuntimeError):  # nothing to interrupt, or not allowed
            session.interrupt()
        try:
            session.generate_reply(user_input=keypress_text(keys))
        except RuntimeError:
            return  # the session has closed


# --- sending keys -----------------------------------------------------------------------

SEND_KEYS = DTMF_DIGITS + "w"  # w: half a second's pause, as the SIP service's own dial DTMF
MAX_SEND_KEYS = 32
MAX_SEND_KEYS_PER_CALL = 128  # a bound on what a talked-into model can type into a PBX
# The SIP service plays each key for 250 ms, then 250 ms of silence (media-sdk dtmf):
# one key per 0.5 s keeps our pacing, and so the pauses, in step with what it plays.
KEY_PERIOD_S = 0.5
PAUSE_S = 0.5
SEND_KEYS_SPOKEN = "I can only press 0 to 9, star, hash and A to D (w for a short pause)."


def parse_send_keys(text: str) -> str:
    """The model's ``digits`` argument as keys to send; ValueError with a sentence for it.

    Spaces and dashes are dropped (models like "1 2 3"), letters are upper-cased, "w"/"W"
    is a pause; anything else is refused whole, never sent in part."""
    keys = "".join(ch for ch in text if ch not in " -")
    keys = "".join("w" if ch in "wW" else ch.upper() for ch in keys)
    if not keys or any(ch not in SEND_KEYS for ch in keys):
        raise ValueError(SEND_KEYS_SPOKEN)
    if len(keys) > MAX_SEND_KEYS:
        raise ValueError(f"I can press at most {MAX_SEND_KEYS} keys at a time.")
    if set(keys) == {"w"}:
        raise ValueError("There are no keys to press, only pauses.")
    return keys


def send_refusal(tools: tuple[str, ...], dialled: list[str], sent: int, keys: str) -> str | None:
    """Why keys may not be sent now (a sentence for the model to pass on), or None."""
    if "dtmf" not in tools:
        return "I can't press keys on this line."
    if not dialled:
        return "There is nobody I added to this call to press keys for."
    if sent + sum(k != "w" for k in keys) > MAX_SEND_KEYS_PER_CALL:
        return "I have pressed as many keys as I may on this call."
    return None
