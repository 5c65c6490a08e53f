"""The tools a route enables, built from the route table and the dial-out policy file."""

from __future__ import annotations

from typing import Any

from livekit.agents import llm

from tools.dial_out import dial_out_tool
from tools.end_call import end_call_tool
from tools.list_participants import list_participants
from tools.transfer import transfer_tool

from .policy import DialHistory
from .policy_config import PolicyConfig
from .routing import Route, RouteTable

DEFAULT_POLICY = "default"


def policy_problems(routes: RouteTable, policy: PolicyConfig) -> list[str]:
    """Names a route uses that the policy file does not define (pure; for start-up and
    `switchboard check`)."""
    problems = []
    for route in routes.routes:
        where = f'{routes.source}: route "{route.name}"'
        name = route.dial_policy or DEFAULT_POLICY
        if "dial_out" in route.tools and name not in policy.policies:
            problems.append(
                f"{where}, field 'dial_policy': no [dial_policy.{name}] in {policy.source}; "
                f"fix: add it, or name one of: {', '.join(sorted(policy.policies)) or 'none'}"
            )
        for dest in route.transfer_destinations:
            if dest not in policy.destinations:
                problems.append(
                    f"{where}, field 'transfer_destinations': no [destinations.{dest}] in "
                    f"{policy.source}; fix: add it or remove {dest!r}"
                )
    return problems


def tools_for(route: Route, policy: PolicyConfig, history: DialHistory) -> list[Any]:
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
        chosen.append(transfer_tool(named))
    return chosen
