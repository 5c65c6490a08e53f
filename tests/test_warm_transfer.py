"""Warm transfer's pure parts: warm or cold, the policy a warm dial obeys, the outcome
words, what the briefed person is told, and the test double's side-session scripts."""

from __future__ import annotations

import json
import urllib.request
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit import api
from livekit.agents import ToolError, llm

import tools.transfer
from lab.testing.fake_openai import HUMAN_SIDE, FakeOpenAI, call, say
from switchboard.call.events import EventLog
from switchboard.call.state import CallState
from switchboard.caller import caller_from_participant
from switchboard.config.policy import PolicyConfig, route_policy
from switchboard.config.prompts import load_prompts
from switchboard.dialing.policy import Destination, DialPolicy
from switchboard.routing import Route
from tools import tools_for
from tools.transfer import listing, transfer_tool
from tools.warm_transfer import (
    BUSY,
    CALL_ENDED,
    DECLINED,
    FAILED,
    HUMAN_LEFT,
    MERGE_UNAVAILABLE,
    NO_ANSWER,
    TRANSFERRED,
    UNREACHABLE,
    VOICEMAIL,
    briefing,
    is_merge_unsupported,
    outcome_for_dial_error,
    outcome_for_task_error,
)

pytestmark = pytest.mark.unit


def sip_error(status: int) -> api.SipCallError:
    return api.SipCallError("unknown", "call failed", status=500,
                            metadata={"sip_status_code": str(status)})  # fmt: skip


DESK = Destination("desk", "the front desk", number="+15105550198")
SUPERVISOR = Destination("supervisor", "the supervisor", number="+15105550197", warm=True)


def test_outcome_words_in_the_record() -> None:
    assert TRANSFERRED.result == "warm_transferred"
    assert NO_ANSWER.result == "warm_failed: no_answer"
    assert MERGE_UNAVAILABLE.result == "warm_failed: merge_unavailable"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (sip_error(486), BUSY),
        (sip_error(480), NO_ANSWER),
        (sip_error(404), UNREACHABLE),
        (sip_error(503), FAILED),
        (api.ServerError("deadline_exceeded", "sip request timed out", status=408), NO_ANSWER),
        (TimeoutError(), NO_ANSWER),
        (RuntimeError("boom"), FAILED),
    ],
)
def test_a_failed_dial_is_named(error: BaseException, expected: object) -> None:
    assert outcome_for_dial_error(error, "ringing") is expected


def test_a_timeout_before_any_ringing_is_unreachable() -> None:
    timeout = api.ServerError("deadline_exceeded", "sip request timed out", status=408)
    assert outcome_for_dial_error(timeout, None) is UNREACHABLE


def test_the_frameworks_endings_are_named() -> None:
    assert outcome_for_task_error("human agent declined to connect: in a meeting") is DECLINED
    assert outcome_for_task_error("voicemail detected") is VOICEMAIL
    assert outcome_for_task_error("room closed: ROOM_DELETED") is HUMAN_LEFT
    assert outcome_for_task_error("AgentTask task_1 is cancelled") is CALL_ENDED
    assert outcome_for_task_error("could not dial human agent") is FAILED


def test_a_server_without_move_participant_is_recognised() -> None:
    # What livekit-server v1.13.5 answers, as the Python API raises it.
    oss = api.ServerError("unknown", "twirp error unknown: not implemented", status=500)
    assert is_merge_unsupported(oss)
    assert not is_merge_unsupported(api.ServerError("not_found", "room not found", status=404))


def test_the_model_is_told_which_destinations_are_warm() -> None:
    text = listing({"desk": DESK, "supervisor": SUPERVISOR})
    assert "- desk: the front desk\n" in text
    assert "- supervisor: the supervisor (you call them first" in text


def test_a_warm_dial_obeys_the_routes_policy_or_the_defaults() -> None:
    lab = DialPolicy("lab", max_dials_per_call=2)
    config = PolicyConfig(policies={"lab": lab}, destinations={"supervisor": SUPERVISOR})
    route = Route(
        "r", tools=("transfer",), dial_policy="lab", transfer_destinations=("supervisor",)
    )
    assert route_policy(route, config) is lab
    fallback = route_policy(Route("r", tools=("transfer",)), config)
    assert fallback == DialPolicy("default")  # one dial per call, three per caller per hour
    (tool,) = tools_for(route, config, cast(Any, None))
    assert isinstance(tool, llm.FunctionTool)
    assert tool.info.name == "transfer_call"


def _state(tmp_path: Any) -> CallState:
    caller = caller_from_participant(
        "sip",
        "sip_+442071234567",
        {"sip.phoneNumber": "+442071234567", "sip.trunkPhoneNumber": "+15105550111",
         "scenario": "warm-x"},
    )  # fmt: skip
    return CallState(
        caller=caller,
        route=Route("r"),
        room_name="call-1",
        agent_identity="agent",
        events=EventLog(tmp_path / "events.jsonl"),
        lk=cast(Any, None),
        prompts=load_prompts(),
        outbound_trunk_id="ST_out",
    )


class _Context:
    def __init__(self, state: CallState) -> None:
        self.userdata = state
        self.session = SimpleNamespace(say=self._say)
        self.said: list[str] = []

    async def _say(self, text: str, **_: object) -> None:
        self.said.append(text)

    def disallow_interruptions(self) -> None:
        pass


async def test_a_warm_destination_takes_the_warm_path(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    warm: list[str] = []

    async def fake_warm(_context: object, name: str, *_: object) -> None:
        warm.append(name)

    monkeypatch.setattr(tools.transfer, "warm_transfer", fake_warm)
    refers: list[api.TransferSIPParticipantRequest] = []

    async def refer(request: api.TransferSIPParticipantRequest) -> None:
        refers.append(request)

    state = _state(tmp_path)
    state.lk = cast(Any, SimpleNamespace(sip=SimpleNamespace(transfer_sip_participant=refer)))
    tool = transfer_tool({"desk": DESK, "supervisor": SUPERVISOR}, DialPolicy("p"), cast(Any, 0))
    context = _Context(state)
    assert await tool(context, "supervisor") is None  # connected: nothing left to say
    assert warm == ["supervisor"] and refers == []
    assert "transferred" in (await tool(context, "desk") or "")
    assert warm == ["supervisor"] and [r.transfer_to for r in refers] == ["tel:+15105550198"]
    with pytest.raises(ToolError):
        await tool(context, "nobody")


def test_the_briefing_carries_the_call_details_as_data(tmp_path: Any) -> None:
    text = str(briefing(_state(tmp_path), SUPERVISOR).extra)
    assert "You are calling the supervisor" in text
    assert "<call_details>" in text and '"scenario": "warm-x"' in text
    assert "connect_to_caller" in text and "decline_transfer" in text
    assert "+442071234567" not in text  # the caller's number is not the person's business


def _chat(fake: FakeOpenAI, system: str, tools: list[str]) -> dict[str, Any]:
    body = {
        "model": "fake",
        "messages": [{"role": "system", "content": system}],
        "tools": [{"type": "function", "function": {"name": n, "parameters": {}}} for n in tools],
    }
    request = urllib.request.Request(
        fake.base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        answer: dict[str, Any] = json.loads(reply.read())
    return answer


def test_the_side_session_plays_its_own_script() -> None:
    with FakeOpenAI() as fake:
        fake.script("warm-x", [say("caller side")])
        fake.script("warm-x" + HUMAN_SIDE, [call("connect_to_caller")])
        system = 'details: {"scenario": "warm-x"}'
        caller_side = _chat(fake, system, ["transfer_call"])
        person_side = _chat(fake, system, ["connect_to_caller", "decline_transfer"])
    assert caller_side["choices"][0]["message"]["content"] == "caller side"
    (called,) = person_side["choices"][0]["message"]["tool_calls"]
    assert called["function"]["name"] == "connect_to_caller"
    assert [r.scenario for r in fake.requests] == ["warm-x", "warm-x" + HUMAN_SIDE]
