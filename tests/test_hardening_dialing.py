"""Issue 15, finding 2 and the loops of finding 5: every destination the agent can reach,
whatever its spelling, meets the restricted classes and the line's own numbers; at check
time (`switchboard check`, `dial-check`) and at dial time (``decide``)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit import api
from livekit.agents import ToolError

from switchboard.call.dial_gate import pass_dial_gate
from switchboard.call.events import EventLog
from switchboard.call.state import CallState
from switchboard.caller import caller_from_participant
from switchboard.cli.main import main
from switchboard.config.errors import ConfigError
from switchboard.config.policy import OVERRIDE, loop_problems, parse_policy
from switchboard.config.prompts import load_prompts
from switchboard.config.settings import load_settings
from switchboard.data.db import open_database
from switchboard.data.dial_history import SharedDialHistory
from switchboard.dialing.policy import (
    Destination,
    DialHistory,
    DialPolicy,
    DialRequest,
    Dictated,
    Named,
    PriorDials,
    Reason,
    decide,
    destination_problem,
    uri_readings,
)
from switchboard.dialing.uris import spellings, uri_user
from switchboard.routing import Route
from switchboard.telephony.config import line_numbers
from tools.transfer import transfer_tool

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent

# The examples: each passed `switchboard check` and `dial-check NAME` before.
ATTACKS = {
    "sip:911@trunk.example.com": Reason.EMERGENCY,
    "sip:+1-911@trunk.example.com": Reason.EMERGENCY,
    "sip:19005550199@trunk.example.com": Reason.PREMIUM,
    "sip:%2B19005550199@trunk.example.com": Reason.PREMIUM,
    "sip:+1-900-555-0199@trunk.example.com": Reason.PREMIUM,
    "sip:+1.900.555.0199@trunk.example.com": Reason.PREMIUM,
    "sip:00449098790123@trunk.example.com": Reason.PREMIUM,
    "sip:118118@trunk.example.com": Reason.SHORT_CODE,
    "sip:+44(909)8790123@trunk.example.com": Reason.PREMIUM,
    # and a few more spellings of the same
    "sips:01119005550199@trunk.example.com:5061": Reason.PREMIUM,
    "sip:%39%31%31@trunk.example.com": Reason.EMERGENCY,
    "sip:112@trunk.example.com": Reason.EMERGENCY,
    "sip:+44%20909%20879%200123@trunk.example.com": Reason.PREMIUM,
}
LINE = "+15105550100"  # telephony.toml's inbound number
LOOPS = (
    "sip:+15105550100@trunk.example.com",
    "sip:15105550100@trunk.example.com",
    "sip:+1-510-555-0100@trunk.example.com",
    "sip:%2B1(510)555.0100@trunk.example.com",
    "sip:01115105550100@trunk.example.com",
    "sip:5105550100@trunk.example.com",  # national, in the policy's region
)


def policy_text(uri: str, *, unsafe: bool = False) -> str:
    head = f"{OVERRIDE} = true\n" if unsafe else ""
    return (
        head + '[dial_policy.default]\nallowed_regions = ["US"]\n'
        f'[destinations.hotline]\nsip_uri = "{uri}"\ndescription = "a hotline"\n'
    )


@pytest.mark.parametrize(("uri", "reason"), ATTACKS.items())
def test_restricted_uri_refused_at_load_naming_it(uri: str, reason: Reason) -> None:
    with pytest.raises(ConfigError) as e:
        parse_policy(policy_text(uri), source="p.toml")
    [problem] = e.value.items
    assert (problem.source, problem.where, problem.key) == (
        "p.toml",
        "[destinations.hotline]",
        "sip_uri",
    )
    assert uri in problem.problem and "never dialled" in problem.problem
    assert OVERRIDE in problem.fix


@pytest.mark.parametrize(("uri", "reason"), ATTACKS.items())
def test_restricted_uri_refused_at_dial_time(uri: str, reason: Reason) -> None:
    """``decide`` re-checks a destination that did not come through the loader."""
    destinations = {"hotline": Destination("hotline", "a hotline", sip_uri=uri)}
    policy = DialPolicy("default", allowed_regions=("US",))
    decision = decide(
        DialRequest(Named("hotline"), None, "c1"), policy, destinations, PriorDials(), 0
    )
    assert not decision.allowed
    assert decision.reason is reason
    assert destination_problem(destinations["hotline"], ("US",)).problem is reason


def test_override_opens_restricted_uris_only_when_set() -> None:
    uri = "sip:+1-900-555-0199@trunk.example.com"
    config = parse_policy(policy_text(uri, unsafe=True))
    policy = config.policies["default"]
    decision = decide(
        DialRequest(Named("hotline"), None, "c1"), policy, config.destinations, PriorDials(), 0
    )
    assert (decision.allowed, decision.reason, decision.target) == (True, Reason.PREMIUM, uri)


@pytest.mark.parametrize(
    "uri",
    [
        "sip:support@pbx.example.com",
        "sip:4711222@pbx.example.com",  # not a valid number anywhere: a PBX extension
        "sip:+15105550142@trunk.example.com",
        "sip:%2B1-510-555-0142@trunk.example.com",
        "sip:sales.team@pbx.example.com",
    ],
)
def test_ordinary_uris_still_load(uri: str) -> None:
    config = parse_policy(policy_text(uri))
    policy = config.policies["default"]
    decision = decide(
        DialRequest(Named("hotline"), None, "c1"), policy, config.destinations, PriorDials(), 0
    )
    assert decision.allowed, decision


def test_non_ascii_digits_in_a_uri_are_refused() -> None:
    with pytest.raises(ConfigError, match="not plain ASCII digits"):
        parse_policy(policy_text("sip:%EF%BC%95%EF%BC%91%EF%BC%90@trunk.example.com"))


def test_uri_reading() -> None:
    assert uri_user("sip:%2B1-900-555-0199@h") == "+19005550199"
    assert uri_user("tel:+1-900-555-0199;phone-context=x") == "+19005550199"
    assert uri_user("mailto:a@b") is None
    assert spellings("0044909") == ("0044909", "+0044909", "+44909")
    assert spellings("+1911") == ("+1911",)
    assert [r.problem for r in uri_readings("tel:+1.900.555.0199")] == [Reason.PREMIUM]
    assert uri_readings("sip:support@pbx.example.com") == ()


def test_check_refuses_a_restricted_uri(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text("sip:%2B19005550199@trunk.example.com"))
    code = main(["check", "--routes", str(ROOT / "routes.toml"), "--policy", str(policy)])
    err = capsys.readouterr().err
    assert code == 1
    assert "[destinations.hotline], field 'sip_uri'" in err
    assert "premium-rate number, which is never dialled" in err
    assert OVERRIDE in err


def test_dial_check_name_exits_non_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Unsafe file so the destination loads; the decision still reports what it is, and a
    # file without the override cannot be loaded at all (exit 2).
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text("sip:118118@trunk.example.com"))
    assert main(["dial-check", "hotline", "--policy", str(policy)]) == 2
    assert "short code" in capsys.readouterr().err


# --- the line's own numbers ----------------------------------------------------------


def test_line_numbers_read_every_trunk_in_e164(tmp_path: Path) -> None:
    assert line_numbers(ROOT / "telephony.toml", {}) == {LINE}
    file = tmp_path / "t.toml"
    file.write_text(
        '[[inbound_trunk]]\nname = "a"\n'
        'numbers = ["${LINE:-+1 510 555 0100}", "+44 20 7123 4567"]\n'
        '[[inbound_trunk]]\nname = "c"\nnumbers = ["${UNSET_VAR}"]\n'
        '[[outbound_trunk]]\nname = "b"\nnumbers = ["+15105550199"]\n'  # a caller ID
    )
    assert line_numbers(file, {}) == {LINE, "+442071234567"}
    assert line_numbers(tmp_path / "missing.toml", {}) == frozenset()


@pytest.mark.parametrize("uri", LOOPS)
def test_loop_refused_at_check_time(uri: str) -> None:
    config = parse_policy(policy_text(uri))
    [problem] = loop_problems(config, frozenset({LINE}))
    assert problem.where == "[destinations.hotline]" and problem.key == "sip_uri"
    assert "this line's own number (a loop)" in problem.problem


def test_loop_number_destination_refused_at_check_time() -> None:
    text = f'[destinations.me]\nnumber = "{LINE}"\ndescription = "me"\n'
    [problem] = loop_problems(parse_policy(text), frozenset({LINE}))
    assert problem.key == "number"


@pytest.mark.parametrize("uri", LOOPS)
def test_loop_refused_at_dial_time(uri: str) -> None:
    destinations = {"hotline": Destination("hotline", "a hotline", sip_uri=uri)}
    policy = DialPolicy("default", allowed_regions=("US",)).with_own_numbers([LINE])
    decision = decide(
        DialRequest(Named("hotline"), None, "c1"), policy, destinations, PriorDials(), 0
    )
    assert (decision.allowed, decision.reason) == (False, Reason.LOOP)


@pytest.mark.parametrize(
    "spoken", ["+15105550100", "+1 (510) 555-0100", "510.555.0100", "1 510 555 0100"]
)
def test_dictated_loop_refused(spoken: str) -> None:
    """The finding: +15105550100 in four spellings passed vip-callback."""
    policy = DialPolicy(
        "vip-callback",
        allowed_regions=("US",),
        allowed_patterns=("+1510555",),
        allow_caller_dictated=True,
    ).with_own_numbers([LINE])
    decision = decide(DialRequest(Dictated(spoken), None, "c1"), policy, {}, PriorDials(), 0)
    assert (decision.allowed, decision.reason) == (False, Reason.LOOP)
    other = decide(DialRequest(Dictated("+15105550177"), None, "c1"), policy, {}, PriorDials(), 0)
    assert other.allowed


def test_check_and_dial_check_refuse_the_line_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text(
        '[dial_policy.default]\nallowed_regions = ["US"]\nallow_caller_dictated = true\n'
        + policy_text("sip:1-510-555-0100@trunk.example.com").split("\n", 2)[2]
    )
    telephony = ROOT / "telephony.toml"
    routes = str(ROOT / "routes.toml")
    args = ["--policy", str(policy), "--telephony", str(telephony)]
    assert main(["check", "--routes", routes, *args]) == 1
    assert "this line's own number (a loop)" in capsys.readouterr().err
    assert main(["dial-check", "hotline", *args]) == 1
    assert "own numbers" in capsys.readouterr().out
    assert main(["dial-check", "+1 510-555-0100", *args]) == 1
    assert "own numbers" in capsys.readouterr().out


@pytest.mark.parametrize(
    "uri", ["tel:112", "tel:+1-900-555-0199", "sip:%2B19005550199@pbx.example.com", "tel:911"]
)
def test_guardian_overflow_cannot_be_restricted(uri: str) -> None:
    """The guardian's overflow (a REFER from the trunk) is a destination too."""
    with pytest.raises(ConfigError) as e:
        load_settings({"SWITCHBOARD_GUARDIAN_OVERFLOW": uri}, need_server=False)
    [problem] = e.value.items
    assert problem.key == "SWITCHBOARD_GUARDIAN_OVERFLOW"
    assert "reaches a restricted number" in problem.problem
    for fine in ("tel:+15105550199", "sip:ops@pbx.example.com", ""):
        overflow = {"SWITCHBOARD_GUARDIAN_OVERFLOW": fine}
        assert load_settings(overflow, need_server=False).guardian.overflow_to == fine


async def test_cold_transfer_refuses_restricted_and_loop_destinations(tmp_path: Path) -> None:
    """A REFER goes out through the trunk too: same readings, same loops (the number this
    call came in on included), and nothing is sent."""
    refers: list[api.TransferSIPParticipantRequest] = []

    async def refer(request: api.TransferSIPParticipantRequest) -> None:
        refers.append(request)

    caller = caller_from_participant(
        "sip",
        "sip_+442071234567",
        {"sip.phoneNumber": "+442071234567", "sip.trunkPhoneNumber": "+15105550111"},
    )
    state = CallState(
        caller=caller,
        route=Route("r"),
        room_name="call-1",
        agent_identity="agent",
        events=EventLog(tmp_path / "events.jsonl"),
        lk=cast(Any, SimpleNamespace(sip=SimpleNamespace(transfer_sip_participant=refer))),
        prompts=load_prompts(),
    )
    context = SimpleNamespace(userdata=state)
    destinations = {
        "premium": Destination("premium", "x", sip_uri="sip:%2B1-900-555-0199@t.example"),
        "itself": Destination("itself", "x", sip_uri="sip:1-510-555-0111@t.example"),
        "line": Destination("line", "x", number=LINE),
    }
    policy = DialPolicy("p", allowed_regions=("US",)).with_own_numbers([LINE])
    tool = transfer_tool(destinations, policy, cast(Any, None))
    for name in destinations:
        with pytest.raises(ToolError, match="I can't transfer you there"):
            await tool(context, name)
    assert refers == []


async def test_dial_gate_refuses_the_number_this_call_came_in_on(tmp_path: Path) -> None:
    """No telephony.toml at all: the call's own called number is still the line's."""
    db = await open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        caller = caller_from_participant(
            "sip", "sip_x", {"sip.phoneNumber": "+442071234567", "sip.trunkPhoneNumber": LINE}
        )
        events = tmp_path / "events.jsonl"
        state = CallState(
            caller=caller,
            route=Route("r"),
            room_name="call-1",
            agent_identity="agent",
            events=EventLog(events),
            lk=cast(Any, None),
            prompts=load_prompts(),
            outbound_trunk_id="ST_out",
        )
        policy = DialPolicy("p", allowed_regions=("US",), allow_caller_dictated=True)
        history = SharedDialHistory(db, DialHistory())
        with pytest.raises(ToolError):
            await pass_dial_gate(
                state, Dictated("(510) 555-0100"), policy, {}, history, no_trunk=""
            )
        allowed = await pass_dial_gate(
            state, Dictated("(510) 555-0177"), policy, {}, history, no_trunk=""
        )
        assert allowed.target == "+15105550177"
    finally:
        await db.close()
    decisions = [json.loads(line) for line in events.read_text().splitlines()]
    assert [d.get("reason") for d in decisions] == ["LOOP", None]
    assert "5550100" not in events.read_text()  # masked, as every dial decision
