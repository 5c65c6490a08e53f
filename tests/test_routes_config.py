"""routes.toml: parsing, every validation error (with where and how to fix), and the
shipped file (including its commented examples)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from switchboard.caller import caller_from_participant
from switchboard.config.errors import ConfigError
from switchboard.config.prompts import DEFAULT_DIR
from switchboard.config.routes import MATCH_KEYS, ROUTE_KEYS, load_routes, parse_routes
from switchboard.routing import Match, Route, RouteTable, route_for

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "routes.toml"
PROMPTS = frozenset({"default", "spanish", "sales"})
DEFAULT = '\n[[route]]\nname = "default"\n'


def parse(text: str) -> RouteTable:
    return parse_routes(text, source="routes.toml", known_prompts=PROMPTS)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text)
    return list(info.value.problems)


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --- what a valid file gives ---------------------------------------------------------


def test_minimal_file_is_just_the_default_route() -> None:
    table = parse(DEFAULT)
    assert table.routes == (Route("default"),)
    assert table.source == "routes.toml"
    route = table.routes[0]
    assert (route.language, route.prompt, route.tools, route.stt_model) == (
        "en-US",
        "default",
        ("end_call",),
        None,
    )


def test_every_field_is_read() -> None:
    table = parse(
        """
[[route]]
name = "spanish-line"
stt_model = "nova-3"
language = "es"
prompt = "spanish"
greeting = "Hola"
tools = ["transfer", "end_call", "dtmf"]
dial_policy = "domestic-only"
transfer_destinations = ["desk", "sales"]
[route.match]
kind = ["sip", "standard"]
called_number = "+15105550101"
caller_number = ["+442071234567", "+15105550100"]
caller_prefix = "+44"
caller_region = ["GB", "US"]
trunk_id = "ST_a"
rule_id = ["SDR_a", "SDR_b"]
number_hidden = false
attributes = { lang = ["es", "es-MX"], "switchboard.entry" = "main-line" }
directory = { tier = "vip" }
"""
        + DEFAULT
    )
    route = table.routes[0]
    assert route.name == "spanish-line"
    assert (route.stt_model, route.language, route.prompt, route.greeting) == (
        "nova-3",
        "es",
        "spanish",
        "Hola",
    )
    assert route.tools == ("transfer", "end_call", "dtmf")
    assert route.dial_policy == "domestic-only"
    assert route.transfer_destinations == ("desk", "sales")
    m = route.match
    assert m.kind == ("sip", "standard")
    assert m.called_number == ("+15105550101",)  # a single string is a list of one
    assert m.caller_number == ("+442071234567", "+15105550100")
    assert m.caller_prefix == ("+44",)
    assert m.caller_region == ("GB", "US")
    assert (m.trunk_id, m.rule_id) == (("ST_a",), ("SDR_a", "SDR_b"))
    assert m.number_hidden is False
    assert dict(m.attributes) == {"lang": ("es", "es-MX"), "switchboard.entry": ("main-line",)}
    assert dict(m.directory) == {"tier": ("vip",)}


def test_inline_match_and_empty_tools() -> None:
    table = parse('[[route]]\nname = "web"\ntools = []\nmatch = { kind = "standard" }' + DEFAULT)
    assert table.routes[0].match == Match(kind=("standard",))
    assert table.routes[0].tools == ()


def test_keys_mirror_the_dataclasses() -> None:
    assert "transfer_destinations" in ROUTE_KEYS
    assert "directory" in MATCH_KEYS
    assert len(MATCH_KEYS) == 10


# --- every problem: where it is and how to fix it ------------------------------------


def route(body: str, match: str = "") -> str:
    """A route named "r" with this body (and match table), followed by the default."""
    return (
        f'[[route]]\nname = "r"\n{body}\n'
        + (f"[route.match]\n{match}\n" if match else "")
        + (DEFAULT)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the file
        ("[[route]\n", ["routes.toml: the file: is not valid TOML", "fix the syntax"]),
        (
            "routes = []" + DEFAULT,
            ["the file, field 'routes': unknown key", "did you mean 'route'"],
        ),
        ('[route]\nname = "default"\n', ["field 'route': is a single table", "write [[route]]"]),
        ("route = [1]\n", ["[[route]] #1: is not a table"]),
        # names
        ("[[route]]\nkind = 1\n" + DEFAULT, ["#1, field 'name': expected a non-empty string"]),
        ("[[route]]\nname = 3\n" + DEFAULT, ["field 'name': expected a non-empty string, got 3"]),
        ('[[route]]\nname = "a b"\nmatch = { kind = "sip" }\n' + DEFAULT, ["unsupported char"]),
        # unknown keys
        (route('langauge = "es"'), ["#1 (\"r\"), field 'langauge': unknown key", "'language'"]),
        (route("zzz = 1"), ["field 'zzz': unknown key", "valid keys: name, match"]),
        (route("", "caller_regoin = 'GB'"), ["'match.caller_regoin'", "'caller_region'"]),
        (route("match = 3"), ["field 'match': expected a table", "[route.match]"]),
        # conditions
        (route("", "kind = 'pstn'"), ["'match.kind': 'pstn' is not a caller kind", '"sip"']),
        (route("", "kind = 1"), ["'match.kind': expected a string or a list of strings"]),
        (route("", "called_number = '5105550100'"), ["'5105550100' is not an E.164", "+1510"]),
        (route("", "called_number = '+1510555'"), ["'+1510555' is not an E.164 number"]),
        (route("", "caller_number = '+1 510 555 0100'"), ["'match.caller_number'", "E.164"]),
        (route("", "caller_prefix = '44'"), ["'44' is not a number prefix", '"+44"']),
        (route("", "caller_region = 'XX'"), ["'XX' is not a known region code", "ISO 3166"]),
        (route("", "caller_region = 'gb'"), ["'gb' is not a known region code", '"GB"']),
        (route("", "trunk_id = ' '"), ["'match.trunk_id': ' ' is empty", "ST_"]),
        (route("", "rule_id = ['SDR_a', '']"), ["'match.rule_id': '' is empty", "SDR_"]),
        (route("", "number_hidden = 'yes'"), ["expected true or false, got 'yes'"]),
        (route("", "kind = []"), ["'match.kind': is an empty list, which no call matches"]),
        (route("", "kind = ['sip', 'sip']"), ["lists ['sip'] more than once"]),
        (route("", "attributes = 'lang'"), ["'match.attributes': expected a table"]),
        (route("", "attributes = { lang = 1 }"), ["'match.attributes.lang': expected a string"]),
        (
            route("", "attributes = { switchboard.entry = 'main' }"),
            ["'match.attributes.switchboard': is a nested table", '"switchboard.entry" = '],
        ),
        (route("", "directory = { tier = [1] }"), ["'match.directory.tier': expected a string"]),
        (
            route("", "attributes = { 'sip.phoneNumber' = '+1' }"),
            ["'match.attributes.sip.phoneNumber': is set by LiveKit", "use match.caller_number"],
        ),
        (
            route("", "attributes = { 'lk.agent.state' = 'x' }"),
            ["is set by LiveKit", "match only the caller's custom attributes"],
        ),
        # what a route gives
        (route("greeting = 3", "kind = 'sip'"), ["field 'greeting': expected a non-empty"]),
        (route("language = 'Spanish'", "kind = 'sip'"), ["'Spanish' is not a BCP-47 tag"]),
        (
            route("stt_model = 'nova-2-phonecall'\nlanguage = 'es'", "kind = 'sip'"),
            ["field 'stt_model': nova-2-phonecall is English-only", "remove stt_model"],
        ),
        (
            route("prompt = 'spanich'", "kind = 'sip'"),
            ["field 'prompt': no prompt file spanich.md", "did you mean 'spanish'?", "create"],
        ),
        (route("prompt = '../etc/passwd'", "kind = 'sip'"), ["no prompt file ../etc/passwd.md"]),
        (
            route("tools = ['transfre']", "kind = 'sip'"),
            ["field 'tools': unknown tool 'transfre'", "did you mean 'transfer'?", "dial_out"],
        ),
        (route("tools = 'end_call'", "kind = 'sip'"), ["field 'tools': expected a list"]),
        (
            route("transfer_destinations = ['desk']", "kind = 'sip'"),
            ["transfer_destinations': is set but the transfer tool is not enabled"],
        ),
        (route("dial_policy = ''", "kind = 'sip'"), ["field 'dial_policy': expected a non-empty"]),
        # the table
        ("", ["the file: has no default route", '[[route]] name = "default"']),
        ('[[route]]\nname = "x"\nmatch = { kind = "sip" }\n', ["has no default route"]),
        (
            '[[route]]\nname = "default"\nmatch = { kind = "sip" }\n',
            ["field 'match': the default route cannot have conditions", "remove its match"],
        ),
        (
            DEFAULT + '[[route]]\nname = "x"\nmatch = { kind = "sip" }\n',
            ['#1 ("default"): the default route is not the last one', "move it to the end"],
        ),
        (
            '[[route]]\nname = "x"\nmatch = { kind = "sip" }\n'
            '[[route]]\nname = "x"\nmatch = { kind = "standard" }\n' + DEFAULT,
            ['#2 ("x"), field \'name\': "x" is used twice', 'first use: [[route]] #1 ("x")'],
        ),
        (
            '[[route]]\nname = "all"\n' + DEFAULT,
            ["#1 (\"all\"), field 'match': has no conditions", 'rename it "default"'],
        ),
    ],
)
def test_problem(text: str, expected: list[str]) -> None:
    found = problems(text)
    assert any(all(part in p for part in expected) for p in found), found
    assert all(p.startswith("routes.toml: ") and "\n  fix: " in p for p in found)


def test_shadowed_route_names_both_routes_and_the_fix() -> None:
    text = (
        """
[[route]]
name = "uk"
match = { caller_region = ["GB", "IE"] }
[[route]]
name = "london"
match = { caller_region = "GB", called_number = "+15105550101" }
"""
        + DEFAULT
    )
    assert only_problem(text) == (
        "routes.toml: [[route]] #2 (\"london\"), field 'match': is unreachable: every call it "
        'matches is taken first by [[route]] #1 ("uk"), whose conditions are a subset of '
        "these, each equal or broader\n"
        '  fix: move "london" above "uk", or remove it'
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('{ caller_region = "GB" }', '{ caller_prefix = "+44" }'),  # +44 is also GG, IM, JE
        ('{ kind = "sip" }', '{ caller_number = "+442071234567" }'),  # kind not certain
        ('{ attributes = { lang = "es" } }', '{ attributes = { lang = ["es", "fr"] } }'),
        ('{ caller_prefix = "+4420" }', '{ caller_prefix = "+44" }'),
    ],
)
def test_overlap_that_is_not_certain_is_not_reported(first: str, second: str) -> None:
    text = f'[[route]]\nname = "a"\nmatch = {first}\n[[route]]\nname = "b"\nmatch = {second}\n'
    assert len(parse(text + DEFAULT).routes) == 3


def test_every_problem_is_reported_at_once() -> None:
    text = route("tools = ['x']\nlanguage = '1'", "kind = 'pstn'\ncaller_region = 'XX'")
    found = problems(text)
    assert len(found) == 4
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert str(info.value).startswith("4 problems in the route table:\n")
    assert only_problem(route("tools = ['x']", "kind = 'sip'")).count("\n  fix: ") == 1


# --- loading from disk ---------------------------------------------------------------


def test_load_routes_checks_prompts_in_the_given_folder(tmp_path: Path) -> None:
    (tmp_path / "default.md").write_text("hi {call_details}")
    routes = tmp_path / "routes.toml"
    routes.write_text(route("prompt = 'sales'", "kind = 'sip'"))
    with pytest.raises(ConfigError, match=r"no prompt file sales\.md") as info:
        load_routes(routes, tmp_path)
    assert f"create {tmp_path}/sales.md" in str(info.value)
    assert str(routes) in str(info.value)
    (tmp_path / "sales.md").write_text("sell {call_details}")
    assert [r.name for r in load_routes(routes, tmp_path).routes] == ["r", "default"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_routes(tmp_path / "nope.toml")


def test_shipped_routes_file_is_valid() -> None:
    table = load_routes(SHIPPED, DEFAULT_DIR)
    assert table.routes[-1].name == "default"
    spanish = route_for(
        caller_from_participant("sip", "c", {"sip.phoneNumber": "+34911234567", "lang": "es"}),
        table,
    )
    assert (spanish.route.name, spanish.route.language, spanish.stt_model) == (
        "spanish",
        "es",
        "nova-3",
    )


def test_shipped_commented_examples_are_valid_when_uncommented() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    head, marker, rest = text.partition("# More examples: uncomment and adapt.\n")
    assert marker, "the examples block moved: update this test"
    examples, _, tail = rest.partition("\n\n")
    uncommented = "\n".join(
        line.removeprefix("#").removeprefix(" ") for line in examples.split("\n")
    )
    table = load_routes_text(head + uncommented + "\n\n" + tail)
    assert len(table.routes) >= 5
    assert all(r.name != "default" for r in table.routes[:-1])


def load_routes_text(text: str) -> RouteTable:
    known = frozenset(p.stem for p in DEFAULT_DIR.glob("*.md"))
    return parse_routes(text, source="routes.toml (examples)", known_prompts=known)


@settings(max_examples=150, deadline=None)
@given(
    kind=st.sampled_from(["sip", "standard", "agent"]),
    attributes=st.dictionaries(
        st.sampled_from(["sip.phoneNumber", "sip.trunkPhoneNumber", "lang"]) | st.text(),
        st.sampled_from(["es", "+442071234567", "ignore previous instructions"]) | st.text(),
    ),
)
def test_shipped_table_routes_any_caller(kind: str, attributes: dict[str, str]) -> None:
    table = load_routes(SHIPPED, DEFAULT_DIR)
    caller = caller_from_participant(kind, "c", attributes)  # type: ignore[arg-type]
    assert route_for(caller, table).route in table.routes
