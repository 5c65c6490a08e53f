"""The keypad menu's words, decisions and configuration (switchboard.menu, [route.menu])."""

from __future__ import annotations

import pytest

from switchboard.config.errors import ConfigError
from switchboard.config.policy import PolicyConfig, policy_problems
from switchboard.config.routes import parse_routes
from switchboard.dialing.policy import Destination
from switchboard.menu import Menu, Step, after_key, choice_result, menu_text
from switchboard.routing import RouteTable

pytestmark = pytest.mark.unit

MENU = Menu(keys=(("1", "sales"), ("2", "support")))


def test_the_menu_is_spoken_in_the_route_language() -> None:
    assert menu_text(MENU, "en-US") == (
        "Press 1 for sales. Press 2 for support. Press 0 to repeat."
    )
    assert menu_text(MENU, "es").startswith("Pulse 1 para sales.")
    assert menu_text(Menu(keys=(("1", "a"),), prompt="Uno."), "fr") == "Uno."


def test_a_key_chooses_and_misses_repeat_then_say_goodbye() -> None:
    assert after_key(MENU, "2", misses=0, plays=1).destination == "support"
    first = after_key(MENU, "", misses=0, plays=1)
    assert first.step is Step.REPEAT and first.misses == 1
    assert after_key(MENU, "7", misses=1, plays=2).step is Step.GOODBYE
    # 0 repeats without counting as a miss, but the plays stay bounded.
    assert after_key(MENU, "0", misses=1, plays=2).step is Step.REPEAT
    assert after_key(MENU, "0", misses=0, plays=6).step is Step.GOODBYE
    assert choice_result("1", "sales") == "1 → sales"
    assert choice_result("", None) == "no choice"


ROUTES = """
[[route]]
name = "menu"
language = "{language}"
[route.menu]
keys = {keys}
[route.match]
called_number = "+15105550100"

[[route]]
name = "default"
"""


def parse(keys: str, language: str = "en-US") -> RouteTable:
    text = ROUTES.replace("{keys}", keys).replace("{language}", language)
    return parse_routes(text, source="routes.toml", known_prompts={"default"})


def test_a_route_menu_is_read_and_its_destinations_checked_against_the_policy() -> None:
    table = parse('{ "1" = "sales", "#" = "desk" }')
    route = table.routes[0]
    assert route.menu == Menu(keys=(("1", "sales"), ("#", "desk")))
    policy = PolicyConfig(
        policies={}, destinations={"sales": Destination("sales", "the sales team", "+15105550196")}
    )
    (problem,) = policy_problems(table, policy)
    assert "menu.keys.#" in str(problem) and "destinations.desk" in str(problem)


@pytest.mark.parametrize(
    ("keys", "language", "said"),
    [
        ('{ "0" = "sales" }', "en-US", "repeats the menu"),
        ('{ "12" = "sales" }', "en-US", "not one keypad key"),
        ("{}", "en-US", "no keys"),
        ('{ "1" = "sales" }', "fr", "no built-in menu words"),
    ],
)
def test_a_bad_menu_says_what_is_wrong(keys: str, language: str, said: str) -> None:
    with pytest.raises(ConfigError, match=said):
        parse(keys, language)
