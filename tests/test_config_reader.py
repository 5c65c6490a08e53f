"""The one configuration reader: every problem of a file at once, each naming the file,
the table and the field and saying how to fix it, in one error type for every file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from switchboard.cli.main import main
from switchboard.config.errors import ConfigError, Problem, collect
from switchboard.config.policy import parse_policy
from switchboard.config.reader import Problems, Table, suggest
from switchboard.config.routes import parse_routes
from switchboard.telephony.config import parse_config

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent

BAD_ROUTES = """
[[route]]
name = "sales"
tols = ["end_call"]
[route.match]
caller_region = "XX"

[[route]]
name = "vip"
language = 3
[route.match]
number_hidden = "no"

[[route]]
name = "default"
"""
BAD_POLICY = """
[dial_policy.x]
max_dial_per_call = 1
allow_named_only = "yes"

[destinations.sales]
number = "555"
description = "the sales team"
"""
BAD_TELEPHONY = """
[[inbound_trunk]]
name = "in"
numbers = ["5105550100"]

[[outbound_trunk]]
name = "out"
address = "nowhere"
numbers = ["+15105550199"]
transport = "sctp"

[[dispatch_rule]]
name = "rule"
trunks = ["nope"]
agent_name = "agent"
"""


def _routes(text: str) -> object:
    return parse_routes(text, source="r.toml", known_prompts={"default"})


def _policy(text: str) -> object:
    return parse_policy(text, source="p.toml")


def _telephony(text: str) -> object:
    return parse_config(text, source="t.toml", env={})


FILES: list[tuple[Callable[[str], object], str, str, int]] = [
    (_routes, BAD_ROUTES, "r.toml", 4),
    (_policy, BAD_POLICY, "p.toml", 3),
    (_telephony, BAD_TELEPHONY, "t.toml", 4),
]


@pytest.mark.parametrize(("parse", "text", "source", "count"), FILES)
def test_every_problem_of_a_file_is_reported_at_once(
    parse: Callable[[str], object], text: str, source: str, count: int
) -> None:
    with pytest.raises(ConfigError) as info:
        parse(text)
    error = info.value
    assert len(error.items) == count, error
    assert str(error).startswith(f"{count} problems in ")
    for item, line in zip(error.items, error.problems, strict=True):
        assert item.source == source
        assert item.where and item.key, item  # the table or route, and the field
        assert item.problem and item.fix
        assert line == str(item)
        assert line.startswith(f"{source}: {item.where}, field '{item.key}': ")
        assert "\n  fix: " in line
    # Problems from different tables of the file, not only the first one found.
    assert len({item.where for item in error.items}) > 1


def test_the_problems_name_where_they_are() -> None:
    with pytest.raises(ConfigError) as info:
        _routes(BAD_ROUTES)
    keys = {(p.where, p.key) for p in info.value.items}
    assert keys == {
        ('[[route]] #1 ("sales")', "tols"),
        ('[[route]] #1 ("sales")', "match.caller_region"),
        ('[[route]] #2 ("vip")', "language"),
        ('[[route]] #2 ("vip")', "match.number_hidden"),
    }
    (typo,) = (p for p in info.value.items if p.key == "tols")
    assert typo.fix == "did you mean 'tools'?"


def test_telephony_reports_problems_of_every_table() -> None:
    with pytest.raises(ConfigError) as info:
        _telephony(BAD_TELEPHONY)
    found = {(p.where, p.key) for p in info.value.items}
    assert found == {
        ("[[inbound_trunk]] #1 ('in')", "numbers"),
        ("[[outbound_trunk]] #1 ('out')", "address"),
        ("[[outbound_trunk]] #1 ('out')", "transport"),
        ("[[dispatch_rule]] #1 ('rule')", "trunks"),
    }


def test_a_syntax_error_is_one_problem_in_each_file() -> None:
    for parse, _, source, _ in FILES:
        with pytest.raises(ConfigError, match=f"{re.escape(source)}: the file: is not valid TOML"):
            parse("[[oops]\n")


def test_the_shipped_files_read_cleanly() -> None:
    prompts = {p.stem for p in (ROOT / "prompts").glob("*.md")}
    parse_routes((ROOT / "routes.toml").read_text(), source="r", known_prompts=prompts)
    parse_policy((ROOT / "policy.toml").read_text())
    env = {"SIP_OUTBOUND_PASSWORD": "x"}
    parse_config((ROOT / "telephony.toml").read_text(), source="t", env=env)


# --- the reader itself ------------------------------------------------------------------


def table(data: dict[str, object]) -> tuple[Problems, Table]:
    problems = Problems("f.toml")
    return problems, Table(problems, "[x]", data)


def test_typed_reads_return_the_value_or_a_fallback_after_a_problem() -> None:
    problems, t = table({"s": "a", "n": 3, "b": True, "l": ["a", "b"], "bad": 1.5})
    assert (t.text("s"), t.integer("n", 0), t.flag("b"), t.strings("l")) == (
        "a",
        3,
        True,
        ("a", "b"),
    )
    assert t.ok and not problems.items
    assert t.text("bad") is None
    assert t.integer("bad", 7, 1, 10) == 7
    assert t.flag("bad") is False
    assert t.strings("bad") is None
    assert not t.ok
    assert [p.key for p in problems.items] == ["bad"] * 4
    assert problems.items[1].problem == "expected a whole number from 1 to 10, got 1.5"


def test_booleans_are_not_numbers() -> None:
    problems, t = table({"n": True})
    assert t.integer("n", 2) == 2
    assert problems.items[0].problem == "expected a whole number, got True"


def test_nested_tables_name_their_fields_from_the_top() -> None:
    problems, t = table({"match": {"kind": 1, "zz": 2}})
    inner = t.within("match", {"kind": 1, "zz": 2})
    inner.keys(("kind",))
    inner.text("kind")
    assert [p.key for p in problems.items] == ["match.zz", "match.kind"]
    assert not t.ok  # a problem inside spoils the table around it


def test_unknown_keys_suggest_the_closest_valid_one() -> None:
    problems, t = table({"descripton": "x", "colour": 1})
    t.keys(("description", "number"))
    assert [p.fix for p in problems.items] == [
        "did you mean 'description'?",
        "remove it; valid keys: description, number",
    ]
    assert suggest("zzzz", ("description",)) == ""


def test_problems_read_as_file_place_field_problem_fix() -> None:
    problem = Problem("f.toml", "[x]", "k", "is wrong", "write it right")
    assert str(problem) == "f.toml: [x], field 'k': is wrong\n  fix: write it right"
    env = Problem("environment", "", "A", "A='1' must be 2", "set A to 2")
    assert str(env) == "environment: A='1' must be 2\n  fix: set A to 2"
    assert str(ConfigError([problem, env], "x")).startswith("2 problems in x:\n")


def test_collect_gathers_the_problems_of_several_files() -> None:
    problems: list[Problem] = []
    fix = "create it"
    assert collect(lambda: _routes(BAD_ROUTES), problems, fix) is None
    assert collect(lambda: _policy(BAD_POLICY), problems, fix) is None
    assert collect(lambda: Path("/nonexistent/x.toml").read_text(), problems, fix) is None
    assert collect(lambda: 42, problems, fix) == 42
    assert [p.source for p in problems] == ["r.toml"] * 4 + ["p.toml"] * 3 + ["/nonexistent/x.toml"]
    assert str(problems[-1]) == "/nonexistent/x.toml: is not there\n  fix: create it"


def test_check_reports_the_routes_and_the_policy_in_one_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    routes, policy = tmp_path / "routes.toml", tmp_path / "policy.toml"
    routes.write_text('[[route]]\nname = "default"\ntols = []\n')
    policy.write_text("[dial_policy.default]\nmax_dial_per_call = 1\n")
    assert main(["check", "--routes", str(routes), "--policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert "field 'tols': unknown key\n  fix: did you mean 'tools'?" in err
    assert (
        "field 'max_dial_per_call': unknown key\n  fix: did you mean 'max_dials_per_call'?" in err
    )
