"""The agents the evals put before a real model, built exactly as a call builds them (the
route's instructions and tools), minus the room; and the mocks that stand in for the
tools whose work needs a call (dialling, transferring, hanging up).

Shared by the evals (``test_evals.py``, which need AI keys) and the unit test that
builds every one of them without a model (``test_eval_agents.py``), so that what the
evals exercise is known to build even where they cannot run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from livekit.agents import AgentSession, llm

from switchboard.call.context import CallAgent, build_agent
from switchboard.call.events import EventLog
from switchboard.call.state import CallState
from switchboard.caller import Caller
from switchboard.config.policy import load_policy
from switchboard.config.prompts import load_prompts
from switchboard.config.routes import load_routes
from switchboard.data.dial_history import SharedDialHistory
from switchboard.routing import Route
from tools import tools_for

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = load_prompts()  # read once, as the worker does at start
POLICY = load_policy(ROOT / "policy.toml")
ROUTES = {r.name: r for r in load_routes(ROOT / "routes.toml").routes}

CALLER = Caller(
    kind="sip",
    identity="sip_+15105550123",
    phone_number="+15105550123",
    called_number="+15105550100",
)
# A caller whose number the network withheld: the model must never say one.
WITHHELD = Caller(kind="sip", identity="sip_anonymous", called_number="+15105550100")

# What the tools that need a call would have said, had they done their work: the model
# sees the real schemas (mock_tools intercepts execution only) and these results. The
# dial-out tool is the real one: its policy refuses a premium number before any dial.
MOCKS: dict[str, Callable[..., Any]] = {
    "end_call": lambda: "The call is ending.",
    "transfer_call": lambda destination: f"Transferring the caller to {destination} now.",
}


@dataclass(frozen=True)
class Case:
    """One route as an eval uses it, and the language its replies must be in."""

    route: Route
    language: str  # in words, for the judge: "English", "Spanish"
    hello: str  # the caller's first words, in that language


def cases() -> list[Case]:
    """Every shipped route, with the tools the evals need added (an operator's route
    may have them: the model must behave with them in reach)."""
    languages = {"en": ("English", "Hello?"), "es": ("Spanish", "¿Hola?")}
    out = []
    for route in ROUTES.values():
        language, hello = languages[route.language.split("-")[0]]
        tools = tuple(dict.fromkeys((*route.tools, "dial_out", "transfer", "end_call")))
        equipped = dataclasses.replace(route, tools=tools, transfer_destinations=("sales",))
        out.append(Case(equipped, language, hello))
    return out


def state_for(route: Route, caller: Caller = CALLER) -> CallState:
    return CallState(
        caller=caller,
        route=route,
        room_name="eval",
        agent_identity="agent",
        events=EventLog(None),
        lk=cast(Any, None),  # never reached: the tools that would use it are mocked
        prompts=PROMPTS,
        outbound_trunk_id="ST_eval",  # so that a dial meets the policy, not "no trunk"
    )


def agent_for(route: Route, history: SharedDialHistory, caller: Caller = CALLER) -> CallAgent:
    """The agent as a call on ``route`` gets it; it speaks when spoken to (the greeting
    on entering is the call's, not the evals')."""
    tools: list[llm.Tool | llm.Toolset] = tools_for(route, POLICY, history)
    return build_agent(caller, route, PROMPTS, None, tools, greet_on_enter=False)


def session_for(
    model: llm.LLM[Any], route: Route, caller: Caller = CALLER
) -> AgentSession[CallState]:
    """A session as a call's, minus the room: text in, text out."""
    return AgentSession[CallState](llm=model, userdata=state_for(route, caller))
