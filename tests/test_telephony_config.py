"""Unit tests: telephony.toml parsing/validation, the pure plan, and proto conversion."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest

from switchboard.cli import provision as cli_provision
from switchboard.config.errors import ConfigError
from switchboard.telephony.config import (
    InboundTrunk,
    OutboundTrunk,
    TelephonyConfig,
    expand_env,
    load_config,
    parse_config,
)
from switchboard.telephony.plan import (
    Action,
    Change,
    Kind,
    ServerState,
    plan,
)
from switchboard.telephony.provision import (
    format_plan,
    inbound_from_proto,
    inbound_to_proto,
    outbound_from_proto,
    outbound_to_proto,
    rule_from_proto,
    rule_to_proto,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent

MINIMAL = """
[[inbound_trunk]]
name = "in"
numbers = ["+15105550100"]
allowed_addresses = ["10.0.0.0/8"]

[[dispatch_rule]]
name = "rule"
trunks = ["in"]
agent_name = "agent"

[[outbound_trunk]]
name = "out"
address = "127.0.0.1:5070"
numbers = ["+15105550199"]
"""


def parse(text: str, env: dict[str, str] | None = None) -> TelephonyConfig:
    return parse_config(text, source="t.toml", env=env or {})


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env)
    assert str(info.value).startswith(f"{len(info.value.problems)} problem")
    return "\n".join(info.value.problems)


# --- parsing ------------------------------------------------------------------------


def test_lab_file_parses_with_defaults() -> None:
    cfg = load_config(ROOT / "lab" / "telephony.toml", env={})
    inbound, ai_inbound, hidden, reference, guarded, menu = cfg.inbound_trunks
    assert menu.numbers == ("+15105550114",)
    assert ai_inbound.numbers == ("+15105550111",)
    assert hidden.numbers == ("+15105550112",)
    assert reference.numbers == ("+15105550113",)
    assert guarded.numbers == ("+15105550120",)
    assert inbound == InboundTrunk(
        "lab-inbound",
        ("+15105550100",),
        ("10.0.0.0/8", "127.0.0.0/8"),
        headers_to_attributes=(("X-Customer-Id", "customer_id"), ("X-Lang", "lang")),
    )
    ai_rule, hidden_rule, rule, guarded_rule, menu_rule, reference_rule = sorted(
        cfg.dispatch_rules, key=lambda r: r.room_prefix
    )
    assert (menu_rule.agents, menu_rule.room_prefix) == (("switchboard-lab-menu",), "menu-")
    assert (guarded_rule.agents, guarded_rule.room_prefix) == (
        ("switchboard-lab-guarded",),
        "guarded-",
    )
    assert (reference_rule.trunks, reference_rule.agents) == (
        ("lab-inbound-reference",),
        ("switchboard-lab-reference",),
    )
    assert (ai_rule.trunks, ai_rule.agents) == (("lab-inbound-ai",), ("switchboard-lab-ai",))
    assert (hidden_rule.agents, hidden_rule.hide_phone_number) == (("switchboard-lab-ai",), True)
    assert (rule.trunks, rule.agents, rule.room_prefix) == (
        ("lab-inbound",),
        ("switchboard-lab",),
        "call-",
    )
    (out,) = cfg.outbound_trunks
    assert (out.name, out.address, out.numbers, out.transport) == (
        "lab-callee",
        "127.0.0.1:5070",
        ("+15105550199",),
        "udp",
    )


def test_lab_file_env_overrides() -> None:
    env = {"LAB_AGENT_NAME": "a2", "LAB_SIP_CALLEE_ADDR": "10.1.2.3:5080"}
    cfg = load_config(ROOT / "lab" / "telephony.toml", env=env)
    assert cfg.dispatch_rules[0].agents == ("a2",)
    assert cfg.outbound_trunks[0].address == "10.1.2.3:5080"


def test_example_file_parses_and_takes_password_from_env() -> None:
    cfg = load_config(ROOT / "telephony.toml", env={"SIP_OUTBOUND_PASSWORD": "s3cret"})
    assert cfg.outbound_trunks[0].auth_password == "s3cret"
    assert cfg.dispatch_rules[0].agents == ("switchboard",)
    assert ("X-Customer-Id", "customer_id") in cfg.inbound_trunks[0].headers_to_attributes
    assert "s3cret" not in repr(cfg)  # secrets stay out of reprs and logs


def test_expand_env() -> None:
    env = {"A": "x", "EMPTY": ""}
    assert expand_env("${A}-${B:-d}-${EMPTY:-e}-${A:-z}", env) == "x-d-e-x"
    assert expand_env("${B:-127.0.0.1:5070}", env) == "127.0.0.1:5070"
    with pytest.raises(LookupError, match="B"):
        expand_env("${B}", env)


def test_inbound_password_from_env() -> None:
    text = MINIMAL.replace(
        'allowed_addresses = ["10.0.0.0/8"]',
        'auth_username = "u"\nauth_password_env = "PW"',
    )
    assert parse(text, {"PW": "p"}).inbound_trunks[0].auth_password == "p"


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('name = "in"', 'name = "in"\ncolour = "red"', "field 'colour': unknown key"),
        ('name = "in"', 'name = "in"\nauth_password = "pw"', "auth_password_env"),
        ('numbers = ["+15105550100"]', 'numbers = "+15105550100"', "list of strings"),
        (
            'agent_name = "agent"',
            'agent_name = "agent"\nhide_phone_number = "yes"',
            "true or false",
        ),
        ('trunks = ["in"]', 'trunks = ["nope"]', "no [[inbound_trunk]] named 'nope'"),
        ('trunks = ["in"]', "trunks = []", "no trunks listed"),
        ('numbers = ["+15105550100"]', 'numbers = ["5105550100"]', "not in E.164 form"),
        ('numbers = ["+15105550199"]', 'numbers = ["+1 510 555 0199"]', "not in E.164 form"),
        ('numbers = ["+15105550199"]', "numbers = []", "at least one number"),
        ('address = "127.0.0.1:5070"', 'address = "sip.example.com"', "is not host:port"),
        ('address = "127.0.0.1:5070"', 'address = "sip:x@h:5060"', "is not host:port"),
        ('address = "127.0.0.1:5070"', 'address = "h:99999"', "is not host:port"),
        (
            'address = "127.0.0.1:5070"',
            'address = "h:5060"\ntransport = "sctp"',
            "unknown transport",
        ),
        (
            'agent_name = "agent"',
            'agent_name = "${AGENT}"',
            "environment variable AGENT is not set",
        ),
        ('agent_name = "agent"', 'agent_name = ""', "field 'agent_name': is empty"),
        ('allowed_addresses = ["10.0.0.0/8"]', 'allowed_addresses = ["10.0.0.0/99"]', "not an IP"),
        ('numbers = ["+15105550100"]\nallowed_addresses = ["10.0.0.0/8"]', "", "from anyone"),
        ('name = "in"', 'name = "in"\nauth_username = "u"', "go together"),
        ('name = "in"', 'name = "in"\nheaders_to_attributes = { "X Bad" = "a" }', "not a valid"),
        ('name = "out"', "", "field 'name': missing required field"),
    ],
)
def test_validation_errors_name_file_table_field_and_fix(old: str, new: str, expected: str) -> None:
    message = error_of(MINIMAL.replace(old, new, 1))
    assert expected in message
    assert message.startswith("t.toml: ")
    assert "\n  fix: " in message


def test_error_names_table_and_object() -> None:
    message = error_of(MINIMAL.replace('address = "127.0.0.1:5070"', 'address = "h"'))
    assert "[[outbound_trunk]] #1 ('out'), field 'address'" in message


def test_password_env_var_must_be_set() -> None:
    text = MINIMAL.replace(
        'name = "out"', 'name = "out"\nauth_username = "u"\nauth_password_env = "PW"'
    )
    assert "environment variable PW is not set" in error_of(text)
    # A dry run shows the plan without the passwords, and says which were not set.
    cfg = parse_config(text, source="t.toml", env={}, secrets=False)
    assert cfg.unset_secrets == (("outbound_trunk", "out", "PW"),)


def test_every_password_the_shipped_file_names_is_documented() -> None:
    import tomllib

    from switchboard.config.file_secrets import FILE_SECRETS

    doc = tomllib.loads((ROOT / "telephony.toml").read_text())
    named = {
        t["auth_password_env"]
        for kind in ("inbound_trunk", "outbound_trunk")
        for t in doc.get(kind, [])
        if "auth_password_env" in t
    }
    assert named == {name for name, _ in FILE_SECRETS}
    example = (ROOT / ".env.example").read_text()
    assert all(f"\n{name}=\n" in example for name in named)


def test_file_level_errors() -> None:
    assert "not valid TOML" in error_of("[[inbound_trunk]\n")
    assert "unknown top-level key 'trunk'" in error_of("[trunk]\nname='x'\n")
    assert "array of tables" in error_of("[inbound_trunk]\nname='x'\n")
    assert "used twice" in error_of(MINIMAL + MINIMAL.split("[[dispatch_rule]]")[0])


def test_lists_are_sets() -> None:
    text = MINIMAL.replace('["10.0.0.0/8"]', '["192.168.0.0/16", "10.0.0.0/8"]')
    assert parse(text).inbound_trunks[0].allowed_addresses == ("10.0.0.0/8", "192.168.0.0/16")
    assert "duplicate entries" in error_of(MINIMAL.replace('["in"]', '["in", "in"]'))


# --- planning -----------------------------------------------------------------------

DESIRED = parse(MINIMAL)
IN, OUT, RULE = DESIRED.inbound_trunks[0], DESIRED.outbound_trunks[0], DESIRED.dispatch_rules[0]
SERVER_RULE = replace(RULE, trunks=("ST_in",))  # the server lists trunk IDs
SAME = ServerState({"ST_in": IN}, {"ST_out": OUT}, {"SDR_r": SERVER_RULE})


def actions(changes: list[Change]) -> list[tuple[Kind, str, Action, str]]:
    return [(c.kind, c.name, c.action, c.server_id) for c in changes]


def test_plan_creates_everything_on_empty_server() -> None:
    changes = plan(DESIRED, ServerState())
    assert [c.action for c in changes] == [Action.CREATE] * 3
    assert [c.kind for c in changes] == [
        Kind.INBOUND_TRUNK,
        Kind.OUTBOUND_TRUNK,
        Kind.DISPATCH_RULE,
    ]
    assert changes[0].desired is IN
    assert any(d.field == "numbers" and d.new == "[+15105550100]" for d in changes[0].diffs)


def test_plan_unchanged_when_server_matches() -> None:
    changes = plan(DESIRED, SAME)
    assert actions(changes) == [
        (Kind.INBOUND_TRUNK, "in", Action.UNCHANGED, "ST_in"),
        (Kind.OUTBOUND_TRUNK, "out", Action.UNCHANGED, "ST_out"),
        (Kind.DISPATCH_RULE, "rule", Action.UNCHANGED, "SDR_r"),
    ]
    assert all(not c.diffs for c in changes)


def test_plan_update_lists_differing_fields_only() -> None:
    drifted = replace(IN, headers_to_attributes=(("X-Old", "old"),))
    changes = plan(DESIRED, replace(SAME, inbound_trunks={"ST_in": drifted}))
    assert changes[0].action is Action.UPDATE and changes[0].server_id == "ST_in"
    ((diff),) = changes[0].diffs
    assert (diff.field, diff.old, diff.new) == ("headers_to_attributes", "{X-Old=old}", "{}")


def test_plan_rule_pointing_at_other_trunk_is_updated() -> None:
    other = replace(RULE, trunks=("ST_gone",))
    changes = plan(DESIRED, replace(SAME, dispatch_rules={"SDR_r": other}))
    assert changes[2].action is Action.UPDATE
    assert changes[2].diffs[0].field == "trunks"


def test_plan_unmanaged_left_alone_and_pruned_with_prune() -> None:
    stray = OutboundTrunk("someone-elses", "h:5060", ("+15105550111",))
    current = replace(SAME, outbound_trunks={"ST_out": OUT, "ST_zz": stray})
    unmanaged = [c for c in plan(DESIRED, current) if c.name == "someone-elses"]
    assert actions(unmanaged) == [(Kind.OUTBOUND_TRUNK, "someone-elses", Action.UNMANAGED, "ST_zz")]
    pruned = [c for c in plan(DESIRED, current, prune=True) if c.name == "someone-elses"]
    assert [c.action for c in pruned] == [Action.DELETE]


def test_plan_duplicate_names_manage_the_matching_one() -> None:
    current = ServerState(
        {"ST_a": replace(IN, numbers=("+1999",)), "ST_b": IN},
        {"ST_out": OUT},
        {"SDR_r": replace(RULE, trunks=("ST_a",))},  # points at the duplicate
    )
    assert actions(plan(DESIRED, current, prune=True)) == [
        (Kind.INBOUND_TRUNK, "in", Action.UNCHANGED, "ST_b"),
        (Kind.INBOUND_TRUNK, "in", Action.DELETE, "ST_a"),
        (Kind.OUTBOUND_TRUNK, "out", Action.UNCHANGED, "ST_out"),
        (Kind.DISPATCH_RULE, "rule", Action.UPDATE, "SDR_r"),  # re-pointed at ST_b
    ]


def test_plan_and_format_never_show_passwords() -> None:
    want = replace(
        DESIRED, outbound_trunks=(replace(OUT, auth_username="u", auth_password="new-pw"),)
    )
    have = replace(
        SAME, outbound_trunks={"ST_out": replace(OUT, auth_username="u", auth_password="old")}
    )
    changes = plan(want, have)
    (diff,) = changes[1].diffs
    assert (diff.field, diff.old, diff.new) == ("auth_password", "<set>", "<changed>")
    text = format_plan(changes, source="t.toml", dry_run=True)
    assert "new-pw" not in text and "old" not in text.replace("<", "")
    assert "update in place" in text and "dry run" in text


def test_a_dry_run_without_the_password_shows_no_password_change() -> None:
    # Read without SIP_OUTBOUND_PASSWORD, the trunk's password is unknown, not empty: the
    # plan must not say it would be cleared.
    unknown = replace(
        DESIRED,
        outbound_trunks=(replace(OUT, auth_username="u"),),
        unset_secrets=(("outbound_trunk", OUT.name, "PW"),),
    )
    have = replace(
        SAME, outbound_trunks={"ST_out": replace(OUT, auth_username="u", auth_password="old")}
    )
    assert plan(unknown, have)[1].action is Action.UNCHANGED
    known = replace(unknown, unset_secrets=())  # a real run with an empty password: a change
    assert [d.field for d in plan(known, have)[1].diffs] == ["auth_password"]


# --- protobuf conversion (pure) -----------------------------------------------------


def test_proto_round_trip() -> None:
    assert inbound_from_proto(inbound_to_proto(IN, None)) == IN
    assert outbound_from_proto(outbound_to_proto(OUT, None)) == OUT
    proto = rule_to_proto(RULE, None, {"in": "ST_in"})
    assert list(proto.trunk_ids) == ["ST_in"]
    assert [a.agent_name for a in proto.room_config.agents] == ["agent"]
    assert rule_from_proto(proto) == SERVER_RULE


def test_replacement_keeps_fields_the_file_does_not_manage() -> None:
    base = inbound_to_proto(IN, None)
    base.sip_trunk_id, base.krisp_enabled, base.metadata = "ST_in", True, "m"
    updated = inbound_to_proto(replace(IN, numbers=("+15105550101",)), base)
    assert (updated.sip_trunk_id, updated.krisp_enabled, updated.metadata) == ("ST_in", True, "m")
    assert list(updated.numbers) == ["+15105550101"]
    rule = rule_to_proto(RULE, None, {"in": "ST_in"})
    rule.rule.dispatch_rule_individual.pin = "1234"
    rule.room_config.agents[0].metadata = "keep"
    again = rule_to_proto(replace(RULE, room_prefix="x-"), rule, {"in": "ST_in"})
    assert again.rule.dispatch_rule_individual.pin == "1234"
    assert again.room_config.agents[0].metadata == "keep"


def test_direct_rule_on_server_shows_as_drift() -> None:
    proto = rule_to_proto(RULE, None, {"in": "ST_in"})
    proto.rule.dispatch_rule_direct.room_name = "lobby"
    assert rule_from_proto(proto).rule_type == "direct"
    fixed = rule_to_proto(RULE, proto, {"in": "ST_in"})
    assert fixed.rule.WhichOneof("rule") == "dispatch_rule_individual"


# --- CLI (no network) ---------------------------------------------------------------


def cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="switchboard")
    cli_provision.add_parser(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_defaults() -> None:
    args = cli(["provision"])
    assert (args.file, args.dry_run, args.prune, args.json) == (
        "telephony.toml",
        False,
        False,
        False,
    )
    assert args.func is cli_provision.run


def test_cli_names_missing_environment_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("LIVEKIT_API_KEY", raising=False)
    monkeypatch.setenv("LIVEKIT_API_SECRET", "x")
    args = cli(["provision", "--dry-run"])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert "LIVEKIT_API_KEY is not set" in err and "LIVEKIT_URL" not in err


def test_cli_dry_run_needs_no_sip_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    monkeypatch.delenv("SIP_OUTBOUND_PASSWORD", raising=False)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    args = cli(["provision", "--dry-run"])
    assert args.func(args) == 2  # for want of a server, not of the password
    err = capsys.readouterr().err
    assert "LIVEKIT_URL is not set" in err and "SIP_OUTBOUND_PASSWORD" not in err
    args = cli(["provision"])  # for real, the password is needed: said with the rest
    assert args.func(args) == 2
    assert "environment variable SIP_OUTBOUND_PASSWORD is not set" in capsys.readouterr().err


def test_cli_missing_file_says_so_before_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    args = cli(["provision", "--dry-run", "--file", str(tmp_path / "missing.toml")])
    assert args.func(args) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'missing.toml'} not found; pass --file PATH" in err
    assert "LIVEKIT" not in err


def test_cli_reports_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.setenv(name, "http://127.0.0.1:1")
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL.replace('["in"]', '["nope"]'))
    args = cli(["provision", "--file", str(bad)])
    assert args.func(args) == 2
    assert "no [[inbound_trunk]] named 'nope'" in capsys.readouterr().err
    args = cli(["provision", "--file", str(tmp_path / "missing.toml")])
    assert args.func(args) == 2
    assert "not found" in capsys.readouterr().err
