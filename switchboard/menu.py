"""A route's keypad menu: what a caller hears when no AI can take the call (keyless mode,
or every provider down mid-call), and what each key does. Pure: the words and the
decisions; the call layer plays them (``switchboard.call.menu``).

A human must stay reachable when the AI itself is not: "press 1 for sales, 2 for support,
0 to repeat". A key names a destination of policy.toml, so the menu can only ever reach
what the operator vetted, through the same dial policy as the agent's own transfers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

# 0 repeats the menu; the other keypad keys may each name one destination.
REPEAT_KEY = "0"
MENU_KEYS = "123456789*#"
DEFAULT_TIMEOUT_S = 8
TIMEOUT_RANGE = (2, 60)
# A caller who presses nothing (or a wrong key) hears the menu this many times in all.
MISSES_ALLOWED = 2
# 0 repeats the menu without counting as a miss, so bound the plays all the same.
MAX_PLAYS = 6


@dataclass(frozen=True, slots=True)
class Menu:
    """``[route.menu]``: keys in the order the file gives them."""

    keys: tuple[tuple[str, str], ...]  # (key, destination name in policy.toml)
    timeout: int = DEFAULT_TIMEOUT_S  # seconds to wait for a key once the menu is heard
    prompt: str | None = None  # the menu's words; unset: built from the keys

    def destination(self, key: str) -> str | None:
        return dict(self.keys).get(key)


@dataclass(frozen=True, slots=True)
class Words:
    press: str  # one option: {key}, {name}
    repeat: str
    connecting: str  # {name}
    unavailable: str  # the key's destination cannot be reached now
    goodbye: str


# The offline voice speaks the route's language, so the menu's own words must be in it too.
# A route in any other language sets menu.prompt (``switchboard check`` says so); the few
# sentences around it then stay in English.
WORDS = {
    "en": Words(
        press="Press {key} for {name}.",
        repeat="Press 0 to repeat.",
        connecting="Connecting you to {name}. Please hold.",
        unavailable="Sorry, {name} cannot be reached right now.",
        goodbye="Sorry, I did not get a choice. Goodbye.",
    ),
    "es": Words(
        press="Pulse {key} para {name}.",
        repeat="Pulse 0 para repetir.",
        connecting="Le paso con {name}. Espere, por favor.",
        unavailable="Lo siento, ahora no es posible comunicarle con {name}.",
        goodbye="Lo siento, no he recibido ninguna opción. Adiós.",
    ),
}
_KEY_NAMES = {"*": "star", "#": "hash"}


def words_for(language: str) -> Words | None:
    return WORDS.get(language.split("-")[0].lower())


def spoken_name(destination: str) -> str:
    """A destination's name as the menu says it: ``front_desk`` → "front desk"."""
    return destination.replace("_", " ").replace("-", " ")


def menu_text(menu: Menu, language: str) -> str:
    """What the caller hears: the route's own prompt, or one sentence per key."""
    if menu.prompt:
        return menu.prompt
    words = words_for(language) or WORDS["en"]
    options = [
        words.press.format(key=_KEY_NAMES.get(k, k), name=spoken_name(d)) for k, d in menu.keys
    ]
    return " ".join([*options, words.repeat])


class Step(Enum):
    CHOSEN = "chosen"
    REPEAT = "repeat"  # play the menu again
    GOODBYE = "goodbye"


@dataclass(frozen=True, slots=True)
class Next:
    step: Step
    destination: str | None = None
    misses: int = 0  # no key, or a key the menu does not have, so far


def after_key(menu: Menu, key: str, *, misses: int, plays: int) -> Next:
    """What follows the key read after the menu's ``plays``-th playing ('' = none)."""
    destination = menu.destination(key) if key else None
    if destination is not None:
        return Next(Step.CHOSEN, destination, misses)
    if key != REPEAT_KEY:
        misses += 1
    if misses >= MISSES_ALLOWED or plays >= MAX_PLAYS:
        return Next(Step.GOODBYE, None, misses)
    return Next(Step.REPEAT, None, misses)


def choice_result(key: str, destination: str | None) -> str:
    """The call record's words for the menu's outcome: ``1 → sales`` or ``no choice``."""
    return f"{key} → {destination}" if destination else "no choice"
