"""Issue 15, finding 5: what configuration may say. Each value the attack used is refused
(or, for a weak PIN, warned about) with the file, the field and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.cli.main import main
from switchboard.config.errors import ConfigError
from switchboard.config.pins import weak_pins, weakness
from switchboard.config.policy import parse_policy, policy_problems
from switchboard.config.prompts import PROMPT_MAX_BYTES, load_prompts
from switchboard.config.routes import SPOKEN_MAX, parse_routes
from switchboard.config.settings import load_settings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = '[[route]]\nname = "default"\n'


def routes(text: str) -> str:
    return text + DEFAULT


def route_problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as e:
        parse_routes(routes(text), source="routes.toml", known_prompts={"default"})
    return list(e.value.problems)


def one_policy_problem(text: str) -> str:
    with pytest.raises(ConfigError) as e:
        parse_policy(text, source="policy.toml")
    [problem] = e.value.problems
    return problem


@pytest.mark.parametrize("region", ["XX", "ZZ", "001", "UK", "U", "USA", "\u202eSU"])
def test_default_region_must_be_known_to_phonenumbers(region: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"SWITCHBOARD_DEFAULT_REGION": region}, need_server=False)
    [problem] = e.value.items
    assert (problem.source, problem.key) == ("environment", "SWITCHBOARD_DEFAULT_REGION")
    assert "ISO 3166" in problem.fix
    assert load_settings({"SWITCHBOARD_DEFAULT_REGION": "gb"}, need_server=False)


@pytest.mark.parametrize(
    ("line", "bounds"),
    [
        ("max_dials_per_call = 999999999999", "from 0 to 20"),
        ("max_dials_per_call = 21", "from 0 to 20"),
        ("max_dials_per_caller_per_hour = 1001", "from 0 to 1000"),
    ],
)
def test_dial_limits_are_bounded(line: str, bounds: str) -> None:
    problem = one_policy_problem(f"[dial_policy.default]\n{line}\n")
    assert problem.startswith("policy.toml: [dial_policy.default], field 'max_dials_per_")
    assert bounds in problem and "fix: write" in problem


def test_sane_limits_still_load() -> None:
    text = "[dial_policy.default]\nmax_dials_per_call = 20\nmax_dials_per_caller_per_hour = 1000\n"
    assert parse_policy(text).policies["default"].max_dials_per_call == 20


def test_destination_description_is_bounded() -> None:
    text = f'[destinations.x]\nnumber = "+15105550142"\ndescription = "{"a" * 501}"\n'
    problem = one_policy_problem(text)
    assert "[destinations.x], field 'description': is 501 characters long; at most 500" in problem


@pytest.mark.parametrize("key", ["greeting", "pin_prompt"])
def test_spoken_texts_are_bounded(key: str) -> None:
    pin = 'pin_env = "STAFF_PIN"\n' if key == "pin_prompt" else ""
    text = f'[[route]]\nname = "a"\n{pin}{key} = "{"x" * (SPOKEN_MAX + 1)}"\n'
    text += '[route.match]\ncalled_number = "+15105550100"\n'
    [problem] = route_problems(text)
    assert f"field '{key}': is {SPOKEN_MAX + 1} characters long; at most {SPOKEN_MAX}" in problem


def test_huge_prompt_file_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text("Be kind.")
    big = tmp_path / "greeting.md"
    with big.open("wb") as f:  # 20 MB, sparse: the loader must not need to read it
        f.truncate(20 * 1024 * 1024)
    with pytest.raises(ConfigError) as e:
        load_prompts(tmp_path)
    [problem] = e.value.items
    assert problem.source == str(big)
    assert f"a prompt may have at most {PROMPT_MAX_BYTES:,}" in problem.problem
    big.write_text("Hello.")
    assert load_prompts(tmp_path)["greeting"] == "Hello."


def test_unknown_dial_policy_refused_on_a_transfer_only_route() -> None:
    table = parse_routes(
        routes(
            '[[route]]\nname = "t"\ntools = ["transfer"]\ndial_policy = "nope"\n'
            'transfer_destinations = ["sales"]\n[route.match]\ncalled_number = "+15105550100"\n'
        ),
        source="routes.toml",
        known_prompts={"default"},
    )
    policy = parse_policy(
        '[dial_policy.default]\n[destinations.sales]\nnumber = "+15105550142"\n'
        'description = "sales"\n',
        source="policy.toml",
    )
    [problem] = policy_problems(table, policy)
    assert (problem.where, problem.key) == ('route "t"', "dial_policy")
    assert "no [dial_policy.nope] in policy.toml" in problem.problem


# --- PINs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pin", ["0000", "1234", "4321", "7890", "999999", "123456", "1212", "123123", "2580"]
)
def test_weak_pins_are_named(pin: str) -> None:
    assert weakness(pin)


@pytest.mark.parametrize("pin", ["4719", "830261", "1357", "0394"])
def test_ordinary_pins_pass(pin: str) -> None:
    assert weakness(pin) is None


def test_weak_pin_warned_by_check_never_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "routes.toml"
    file.write_text(
        routes(
            '[[route]]\nname = "staff"\npin_env = "STAFF_PIN"\n'
            '[route.match]\ncalled_number = "+15105550100"\n'
        )
    )
    table = parse_routes(file.read_text(), source=str(file), known_prompts={"default"})
    [warning] = weak_pins(table, {"STAFF_PIN": "1234"})
    assert "STAFF_PIN is weak: a run of consecutive digits" in str(warning)
    assert weak_pins(table, {"STAFF_PIN": "4719"}) == []
    monkeypatch.setenv("STAFF_PIN", "000000")
    code = main(["check", "--routes", str(file), "--policy", str(ROOT / "policy.toml")])
    err = capsys.readouterr().err
    assert code == 0  # a warning, not an error
    assert "warning: " in err and "STAFF_PIN is weak: one digit repeated" in err
    assert "000000" not in err


PIN_BY_HEADER = (
    '[[route]]\nname = "vip"\npin_env = "VIP_PIN"\n{flag}'
    '[route.match]\nattributes = {{ customer_tier = "vip" }}\n'
)


def test_pin_route_selected_only_by_caller_attributes_refused() -> None:
    [problem] = route_problems(PIN_BY_HEADER.format(flag=""))
    assert problem.startswith("routes.toml: [[route]] #1 (\"vip\"), field 'match': selects")
    assert "allow_caller_selected_pin = true" in problem


def test_flag_lets_it_load_and_an_operator_condition_needs_none() -> None:
    flagged = PIN_BY_HEADER.format(flag="allow_caller_selected_pin = true\n")
    table = parse_routes(routes(flagged), source="r", known_prompts={"default"})
    assert table.routes[0].allow_caller_selected_pin
    both = PIN_BY_HEADER.format(flag="") + 'called_number = "+15105550100"\n'
    assert parse_routes(routes(both), source="r", known_prompts={"default"})


def test_flag_without_a_pin_refused() -> None:
    text = (
        '[[route]]\nname = "a"\nallow_caller_selected_pin = true\n'
        '[route.match]\ncalled_number = "+15105550100"\n'
    )
    [problem] = route_problems(text)
    assert "field 'allow_caller_selected_pin': is set but pin_env is not" in problem
