"""The route's PIN gate: nothing the caller says reaches the model before the PIN is right.

The PIN is read from the caller's own key presses only (``switchboard.call.keypad``
keeps one buffer per participant), compared in constant time, and never logged: events
carry the outcome of an attempt, not its digits, not even how many. Wrong PINs also count
against the caller's number across calls (``call.pin_lockout``): a locked-out number is
told to call back later and asked for nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from switchboard.call.event_types import (
    CallEvent,
    PinAccepted,
    PinAttempt,
    PinLockedOut,
    PinLockout,
    PinLockoutEnded,
    PinRefused,
)
from switchboard.call.events import EventLog
from switchboard.call.keypad import DtmfCollector
from switchboard.call.pin_lockout import Standing

PIN_MAX_DIGITS = 16  # read past the longest PIN, so the read never ends at its length
PIN_TIMEOUT_S = 10.0  # for the first key after the prompt has been heard
PIN_INTER_DIGIT_S = 5.0
PIN_WRONG = "That PIN is not correct."
PIN_NOTHING = "I did not get a PIN."
PIN_GOODBYE = "Sorry, I could not verify your PIN. Goodbye."
PIN_UNAVAILABLE = "Sorry, this line is not available right now. Goodbye."


# --- checking a PIN ---------------------------------------------------------------------


def check_pin(entered: str, expected: str) -> bool:
    """Whether the entered digits are the PIN, in time independent of where they differ.

    Both are hashed first: ``hmac.compare_digest`` takes time independent of the contents
    but not of the lengths, and equal-length digests hide the PIN's length as well.
    """
    if not expected or not entered:
        return False
    a = hashlib.sha256(entered.encode()).digest()
    b = hashlib.sha256(expected.encode()).digest()
    return hmac.compare_digest(a, b)


# --- the PIN gate -----------------------------------------------------------------------


class Playout(Protocol):
    async def wait_for_playout(self) -> None: ...


class AudioSwitch(Protocol):
    @property
    def audio(self) -> object: ...

    def set_audio_enabled(self, enable: bool) -> None: ...


class Lockout(Protocol):
    """Where the caller's number stands (``pin_lockout.CallerLockout``)."""

    async def standing(self) -> Standing: ...

    async def record(self, ok: bool) -> None: ...


@dataclass(frozen=True)
class LockoutCheck:
    """The lockout the gate consults, and what a locked-out caller hears."""

    lockout: Lockout
    locked_line: str


class Speaker(Protocol):
    """What the gate needs of an AgentSession (a Protocol, so tests can pass a fake)."""

    @property
    def input(self) -> AudioSwitch: ...

    def say(
        self, text: str, *, allow_interruptions: bool = ..., add_to_chat_ctx: bool = ...
    ) -> Playout: ...


async def pin_gate(
    session: Speaker,
    collector: DtmfCollector,
    caller_identity: str,
    *,
    expected: str | None,
    attempts: int,
    prompt: str,
    timeout_s: float = PIN_TIMEOUT_S,
    inter_digit_s: float = PIN_INTER_DIGIT_S,
    events: EventLog | None = None,
    lockout: LockoutCheck | None = None,
) -> bool:
    """Ask for the PIN up to ``attempts`` times; True once the caller keyed it in.

    On False the goodbye has been heard and the caller of the gate ends the call.
    Until True, the caller's audio is switched off: nothing said reaches the model, so the
    agent does nothing else before the PIN (the call flow also switches it off before the
    session starts, to close the gap while it starts). None as ``expected`` (the variable
    went missing) refuses the call: a gate that cannot check lets nobody through.
    """
    emit: Callable[[CallEvent], None] = events.emit if events is not None else lambda _: None
    session.input.set_audio_enabled(False)
    try:
        if expected is None:
            emit(PinRefused(reason="not_configured", attempts=0))
            await _say(session, PIN_UNAVAILABLE)
            return False
        if lockout is not None:
            now = await lockout.lockout.standing()
            if now.locked_until is not None:
                emit(PinLockedOut(until=now.locked_until))
                emit(PinRefused(reason="locked_out", attempts=0))
                await _say(session, lockout.locked_line)
                return False
            if now.lockout_ended is not None:
                emit(PinLockoutEnded(ended_at=now.lockout_ended))
        text = prompt
        for attempt in range(1, attempts + 1):
            await _say(session, text)
            entered = await collector.read(
                caller_identity,
                PIN_MAX_DIGITS,
                terminator="#",
                timeout_s=timeout_s,
                inter_digit_s=inter_digit_s,
            )
            ok = check_pin(entered, expected)
            # Only the outcome: not the digits, not even how many (that is half a PIN).
            result = "accepted" if ok else "wrong" if entered else "nothing"
            emit(PinAttempt(attempt=attempt, result=result))
            if lockout is not None and entered:  # a silence guesses nothing: not counted
                await lockout.lockout.record(ok)
            if ok:
                emit(PinAccepted(attempt=attempt))
                if session.input.audio is not None:
                    session.input.set_audio_enabled(True)
                return True
            if lockout is not None and entered:
                after = await lockout.lockout.standing()
                if after.locked_until is not None:
                    seconds = after.lockout_s or 0.0
                    emit(
                        PinLockout(
                            until=after.locked_until, seconds=seconds, lockouts=after.lockouts
                        )
                    )
                    emit(PinRefused(reason="locked_out", attempts=attempt))
                    await _say(session, f"{PIN_WRONG} {lockout.locked_line}")
                    return False
            text = f"{PIN_WRONG if entered else PIN_NOTHING} {prompt}"
        emit(PinRefused(reason="attempts", attempts=attempts))
        await _say(session, PIN_GOODBYE)
        return False
    except RuntimeError:
        return False  # the session closed under us: the caller hung up


async def _say(session: Speaker, text: str) -> None:
    # Not in the chat context: the PIN exchange is not conversation, and the model's
    # first turn after the gate should be its greeting. Not interruptible: the caller
    # answers with keys, and audio input is off anyway.
    handle = session.say(text, allow_interruptions=False, add_to_chat_ctx=False)
    await handle.wait_for_playout()
