"""Function tools the agent can call, one module per tool; ``tools_for`` picks a route's.

Each module holds one tool and the checks it runs before acting; the decisions themselves
(who may be dialled, what a leg's outcome means) live in ``switchboard.dialing``.
"""

from __future__ import annotations

from livekit.agents import llm

from switchboard.config.policy import DEFAULT_POLICY, PolicyConfig, route_policy
from switchboard.data.dial_history import SharedDialHistory
from switchboard.routing import Route
from tools.dial_out import dial_out_tool
from tools.end_call import end_call_tool
from tools.list_participants import list_participants as list_participants_tool
from tools.send_dtmf import send_dtmf as send_dtmf_tool
from tools.transfer import transfer_tool


def tools_for(
    route: Route, policy: PolicyConfig, history: SharedDialHistory
) -> list[llm.Tool | llm.Toolset]:
    """Function tools and toolsets for one call on ``route``."""
    chosen: list[llm.Tool | llm.Toolset] = []
    if "end_call" in route.tools:
        chosen.append(end_call_tool())
    if "list_participants" in route.tools:
        chosen.append(list_participants_tool)
    if "dial_out" in route.tools:
        dial_policy = policy.policies[route.dial_policy or DEFAULT_POLICY]
        chosen.append(dial_out_tool(dial_policy, policy.destinations, history))
    if "transfer" in route.tools and route.transfer_destinations:
        named = {n: policy.destinations[n] for n in route.transfer_destinations}
        chosen.append(transfer_tool(named, route_policy(route, policy), history))
    if "dtmf" in route.tools:
        chosen.append(send_dtmf_tool)
    return chosen
