"""The tools a route enables, built from the route table and the dial-out policy file."""

from __future__ import annotations

from typing import Any

from livekit.agents import llm

from tools.dial_out import dial_out_tool
from tools.end_call import end_call_tool
from tools.list_participants import list_participants
from tools.send_dtmf import send_dtmf
from tools.transfer import transfer_tool

from .dial_log import SharedDialHistory
from .policy import DialPolicy
from .policy_config import DEFAULT_POLICY, PolicyConfig
from .routing import Route


def tools_for(route: Route, policy: PolicyConfig, history: SharedDialHistory) -> list[Any]:
    """Function tools and toolsets for one call on ``route``."""
    chosen: list[llm.Tool | llm.Toolset] = []
    if "end_call" in route.tools:
        chosen.append(end_call_tool())
    if "list_participants" in route.tools:
        chosen.append(list_participants)
    if "dial_out" in route.tools:
        dial_policy = policy.policies[route.dial_policy or DEFAULT_POLICY]
        chosen.append(dial_out_tool(dial_policy, policy.destinations, history))
    if "transfer" in route.tools and route.transfer_destinations:
        named = {n: policy.destinations[n] for n in route.transfer_destinations}
        chosen.append(transfer_tool(named, transfer_policy(route, policy), history))
    if "dtmf" in route.tools:
        chosen.append(send_dtmf)
    return chosen


def transfer_policy(route: Route, policy: PolicyConfig) -> DialPolicy:
    """The dial policy a warm transfer's call obeys: the route's, or, for a route that
    does not dial out and names none that exists, the defaults (one dial per call)."""
    name = route.dial_policy or DEFAULT_POLICY
    return policy.policies.get(name) or DialPolicy(name)
