"""policy.toml: parsing, every validation error (where, what, how to fix), the shipped file
and its commented examples, and the `switchboard dial-check` command."""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path

import pytest

from switchboard.cli.main import main
from switchboard.config.errors import ConfigError
from switchboard.config.policy import (
    DESTINATION_KEYS,
    POLICY_KINDS,
    PolicyConfig,
    load_policy,
    parse_policy,
)
from switchboard.dialing.policy import (
    Destination,
    DialPolicy,
    DialRequest,
    Named,
    PriorDials,
    Reason,
    decide,
)
from switchboard.dialing.reason_words import REASON_WORDS

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "policy.toml"
SALES = '[destinations.sales]\nnumber = "+15105550142"\ndescription = "the sales team"\n'


def problems(text: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as e:
        parse_policy(text, source="p.toml")
    assert str(e.value).startswith(f"{len(e.value.problems)} problem")
    for problem in e.value.problems:
        assert problem.startswith("p.toml: ")
        assert "\n  fix: " in problem
    return e.value.problems


def one(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def test_file_keys_mirror_the_dataclasses() -> None:
    policy_fields = [f.name for f in fields(DialPolicy)]
    assert list(POLICY_KINDS) == policy_fields[1:-2]  # not name, the override, own numbers
    assert tuple(f.name for f in fields(Destination))[1:] == DESTINATION_KEYS


def test_defaults_are_the_safe_ones() -> None:
    config = parse_policy("[dial_policy.x]\n")
    assert config.policies["x"] == DialPolicy("x")
    assert DialPolicy("x").max_dials_per_call == 1
    assert DialPolicy("x").max_dials_per_caller_per_hour == 3
    assert not DialPolicy("x").allow_caller_dictated
    assert not config.unsafe_allow_restricted
    assert parse_policy("") == PolicyConfig({}, {}, False, "policy.toml")


def test_full_policy_and_destinations() -> None:
    config = parse_policy(
        """
[dial_policy.callback]
allowed_regions = ["US", "CA"]
allowed_patterns = ["+1510555", "+1613"]
allow_caller_dictated = true
allow_named_only = true
max_dials_per_call = 2
max_dials_per_caller_per_hour = 0

[destinations.support]
sip_uri = "sips:support@pbx.example.com:5061"
description = "support"
dtmf = "ww123#"
warm = true
"""
        + SALES,
        source="mine.toml",
    )
    assert config.source == "mine.toml"
    assert config.policies["callback"] == DialPolicy(
        "callback", ("US", "CA"), ("+1510555", "+1613"), True, 2, 0, True
    )
    assert config.destinations["support"] == Destination(
        "support", "support", None, "sips:support@pbx.example.com:5061", "ww123#", True
    )
    assert config.destinations["sales"].number == "+15105550142"


def test_unknown_keys_get_the_closest_valid_one() -> None:
    assert "did you mean 'max_dials_per_call'?" in one("[dial_policy.x]\nmax_dial_per_call = 1")
    assert "[dial_policy.x], field 'max_dial_per_call'" in one(
        "[dial_policy.x]\nmax_dial_per_call = 1"
    )
    assert "did you mean 'destinations'?" in one('[destination.sales]\nnumber = "+1"')
    assert "did you mean 'description'?" in one(SALES + 'descripton = "x"')
    assert "valid keys:" in one("[dial_policy.x]\ncolour = 1")


def test_the_override_belongs_at_the_top() -> None:
    problem = one("[dial_policy.x]\nUNSAFE_ALLOW_RESTRICTED_NUMBERS = true")
    assert "at the top of the file" in problem
    assert "expected true or false" in one('UNSAFE_ALLOW_RESTRICTED_NUMBERS = "true"')
    config = parse_policy("UNSAFE_ALLOW_RESTRICTED_NUMBERS = true\n[dial_policy.x]\n")
    assert config.unsafe_allow_restricted
    assert config.policies["x"].unsafe_allow_restricted


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('allow_named_only = "yes"', "expected true or false, got 'yes'"),
        ("allow_caller_dictated = 1", "expected true or false, got 1"),
        ('max_dials_per_call = "2"', "expected a whole number from 0 to 20, got '2'"),
        ("max_dials_per_call = true", "expected a whole number from 0 to 20, got True"),
        ("max_dials_per_call = 1.5", "expected a whole number from 0 to 20, got 1.5"),
        ("max_dials_per_call = -1", "is negative (-1)"),
        ("max_dials_per_caller_per_hour = -5", "is negative (-5)"),
        ('allowed_regions = "US"', "expected a list of strings, got 'US'"),
        ("allowed_patterns = [1510555]", "expected a list of strings"),
    ],
)
def test_wrong_types_and_negative_limits(line: str, expected: str) -> None:
    problem = one(f"[dial_policy.x]\n{line}")
    key = line.split(" ")[0]
    assert f"[dial_policy.x], field '{key}'" in problem
    assert expected in problem


@pytest.mark.parametrize(
    ("region", "hint"),
    [("UK", '"GB"'), ("us", '"US"'), ("XX", '"US"'), ("USA", '"US"'), ("001", '"US"')],
)
def test_region_codes(region: str, hint: str) -> None:
    problem = one(f'[dial_policy.x]\nallowed_regions = ["{region}"]')
    assert f"'{region}' is not a region code" in problem
    assert f"fix: write {hint}" in problem


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("^\\\\+1510.*", "is not an E.164 prefix"),  # a regex: prefixes only
        ("1510555", "is not an E.164 prefix"),
        ("+1 510", "is not an E.164 prefix"),
        ("+", "is not an E.164 prefix"),
        ("+999", "has no whole country code"),
        ("+44", "can never match: +44 is in no allowed region"),
    ],
)
def test_patterns(prefix: str, expected: str) -> None:
    text = f'[dial_policy.x]\nallowed_regions = ["US"]\nallowed_patterns = ["{prefix}"]'
    assert expected in one(text)


def test_dictation_needs_a_region() -> None:
    problem = one("[dial_policy.x]\nallow_caller_dictated = true")
    assert "field 'allowed_regions': is empty" in problem
    parse_policy("[dial_policy.x]\nallow_caller_dictated = true\nallow_named_only = true")


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        ('description = "x"', "number", "exactly one of number and sip_uri"),
        (
            'number = "+15105550142"\nsip_uri = "sip:a@b.example"\ndescription = "x"',
            "number",
            "exactly one",
        ),
        ('number = "5105550142"\ndescription = "x"', "number", "is not E.164"),
        ('number = "+1 510 555 0142"\ndescription = "x"', "number", "is not E.164"),
        ('number = 15105550142\ndescription = "x"', "number", "is not E.164"),
        ('number = "+15105550"\ndescription = "x"', "number", "is not a valid phone number"),
        ('number = "+19005550100"\ndescription = "x"', "number", "is a premium-rate number"),
        ('number = "+449098790000"\ndescription = "x"', "number", "premium-rate"),
        ('number = "+33810000000"\ndescription = "x"', "number", "a shared-cost number"),
        ('number = "+447010000000"\ndescription = "x"', "number", "personal, pager, UAN"),
        ('sip_uri = "sip:+19005550100@trunk.example.com"\ndescription = "x"', "sip_uri", "premium"),
        ('sip_uri = "sip:a@evil.com;transport=tcp"\ndescription = "x"', "sip_uri", "plain SIP URI"),
        ('sip_uri = "sip:a@evil.com?X-Evil=1"\ndescription = "x"', "sip_uri", "plain SIP URI"),
        ('sip_uri = "tel:+15105550142"\ndescription = "x"', "sip_uri", "plain SIP URI"),
        ('sip_uri = "sip:pbx.example.com"\ndescription = "x"', "sip_uri", "plain SIP URI"),
        ('number = "+15105550142"\ndtmf = "12a"\ndescription = "x"', "dtmf", "is not DTMF"),
        ('number = "+15105550142"\ndtmf = 123\ndescription = "x"', "dtmf", "is not DTMF"),
        ('number = "+15105550142"', "description", "is missing"),
        ('number = "+15105550142"\ndescription = "  "', "description", "non-empty string"),
        ('number = "+15105550142"\ndescription = "x"\nwarm = "yes"', "warm", "true or false"),
    ],
)
def test_destination_problems(body: str, field: str, expected: str) -> None:
    problem = one(f"[destinations.d]\n{body}")
    assert f"p.toml: [destinations.d], field '{field}': " in problem
    assert expected in problem


def test_restricted_destinations_need_the_override() -> None:
    premium = '[destinations.d]\nnumber = "+19005550100"\ndescription = "x"\n'
    assert "UNSAFE_ALLOW_RESTRICTED_NUMBERS = true" in one(premium)
    assert "an emergency number" in one(premium.replace("+19005550100", "+1911"))
    assert "a short code" in one(premium.replace("+19005550100", "+44118118"))
    config = parse_policy("UNSAFE_ALLOW_RESTRICTED_NUMBERS = true\n" + premium)
    assert config.destinations["d"].number == "+19005550100"
    invalid = premium.replace("+19005550100", "+1510555010")  # the override does not open these
    assert "is not a valid phone number" in one(
        "UNSAFE_ALLOW_RESTRICTED_NUMBERS = true\n" + invalid
    )


def test_every_problem_is_reported_at_once() -> None:
    found = problems(
        """
colour = 1
[dial_policy.a]
allowed_regions = ["UK"]
max_dials_per_call = -1
allow_named_onyl = true
[destinations.b]
number = "+19005550100"
"""
    )
    assert len(found) == 6, found
    joined = "\n".join(found)
    for part in ("'colour'", "'UK'", "-1", "allow_named_only", "premium-rate", "'description'"):
        assert part in joined


def test_structure_problems() -> None:
    assert "is not valid TOML" in one("[dial_policy.x")
    assert "is not a table" in one("dial_policy = 3")
    assert "is not a table" in one("[dial_policy]\nx = 3")
    assert "unsupported characters" in one('[dial_policy."bad name"]')


def test_load_policy_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(SALES, encoding="utf-8")
    assert load_policy(path).source == str(path)
    with pytest.raises(FileNotFoundError):
        load_policy(tmp_path / "missing.toml")


def test_the_shipped_file_loads_and_is_safe() -> None:
    config = load_policy(SHIPPED)
    assert not config.unsafe_allow_restricted
    assert config.policies["default"] == DialPolicy("default")
    assert {"default", "vip-callback"} <= set(config.policies)
    for name in config.destinations:
        request = DialRequest(Named(name), "+15105550123", "call-1")
        policy = config.policies["default"]
        assert decide(request, policy, config.destinations, PriorDials(), 0.0).allowed


def test_the_shipped_commented_examples_load() -> None:
    """Uncomment every commented TOML line (not the prose) and the file still loads."""
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()
    code = re.compile(r"# ?(\[(destinations|dial_policy)\.[\w.-]+\]$|[a-z_]+ = \S)")
    uncommented = [re.sub(r"^# ?", "", ln) if code.match(ln) else ln for ln in lines]
    config = parse_policy("\n".join(uncommented))
    assert {"uk-support", "uk-sales"} <= set(config.destinations)
    # and the override line is there, commented out, for whoever needs to find it
    assert "# UNSAFE_ALLOW_RESTRICTED_NUMBERS = true" in lines


# The CLI.


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[dial_policy.default]\n[dial_policy.open]\nallowed_regions = ["US"]\n'
        "allow_caller_dictated = true\n" + SALES,
        encoding="utf-8",
    )
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["dial-check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_allowed_named(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sales", "--policy", str(policy_file))
    assert code == 0
    assert re.search(r"decision\s+allowed", out)
    assert re.search(r"dial\s+\+15105550142", out)
    assert re.search(r"policy\s+default", out)


def test_cli_refused(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--policy", str(policy_file), "--policy-name", "open", "--caller", "+15105550123")
    code, out, _ = run(capsys, "+44 909 879 0000", *args)
    assert code == 1
    assert re.search(r"reason\s+a premium-rate number\n", out)
    assert "I can't place that call for you." in out
    code, out, _ = run(capsys, "911", *args)
    assert code == 1
    assert "Please hang up and dial them directly." in out
    code, out, _ = run(capsys, "+1 510 555 0177", *args, "--json")
    assert code == 0
    assert '"dial": "+15105550177"' in out
    assert '"caller": "+1510••••0123"' in out


def test_cli_dictation_off_by_default(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "+1 510 555 0100", "--policy", str(policy_file))
    assert code == 1
    assert "the policy does not let callers dictate numbers" in out
    assert "DICTATION_NOT_ALLOWED" not in out


def test_cli_says_what_is_wrong_with_a_number(
    policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "abc", "--policy", str(policy_file), "--policy-name", "open")
    assert code == 1
    assert re.search(r"reason\s+not a phone number: it holds characters other than", out)
    assert "injected" not in out.lower()
    code, out, _ = run(capsys, "abc", "--policy", str(policy_file), "--json")
    doc = json.loads(out)
    assert (doc["reason"], doc["why"].split(":")[0]) == ("INJECTED", "not a phone number")


def test_every_reason_has_words() -> None:
    assert set(REASON_WORDS) == set(Reason)


def test_cli_bad_arguments_and_config(
    policy_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "sales", "--policy", str(tmp_path / "none.toml"))
    assert code == 2
    assert "none.toml: is not there" in err and "SWITCHBOARD_POLICY" in err
    code, _, err = run(capsys, "sales", "--policy", str(policy_file), "--policy-name", "vip")
    assert code == 2
    assert "no [dial_policy.vip]" in err
    assert "known: default, open" in err
    bad = tmp_path / "bad.toml"
    bad.write_text("[dial_policy.x]\nmax_dials_per_call = -1\n", encoding="utf-8")
    code, _, err = run(capsys, "sales", "--policy", str(bad))
    assert code == 2
    assert "is negative" in err
    with pytest.raises(SystemExit) as e:
        main(["dial-check"])
    assert e.value.code == 2


def test_dial_check_uses_a_routes_policy(capsys: pytest.CaptureFixture[str]) -> None:
    from switchboard.cli.main import main

    root = Path(__file__).resolve().parent.parent
    args = ["dial-check", "+15105550123", "--route", "lab-tools", "--routes",
            str(root / "lab/routes.toml"), "--policy", str(root / "lab/policy.toml")]  # fmt: skip
    assert main(args) == 0
    assert "allowed" in capsys.readouterr().out
    assert main([*args[:2], "--route", "nope", *args[4:]]) == 2
    missing = ["dial-check", "1", "--route", "x", "--routes", "nowhere.toml"]
    assert main(missing) == 2
    err = capsys.readouterr().err
    assert "nowhere.toml: is not there" in err and "SWITCHBOARD_ROUTES" in err
    assert "Errno" not in err
