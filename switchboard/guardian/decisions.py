"""What to do for one room, as pure functions of what the server says and the time.

The guardian keeps no state that matters: the room's history lives on the server, in the
dispatches (a guardian's dispatch carries a ``Mark``: resume or not, attempt number, when
the wait began). What the guardian remembers (``Memory``) only makes it quicker: a
restarted guardian waits a little longer, never dispatches twice.

Two guardians, or a guardian and the dispatch rule, must never put two agents in one room:
- before dispatching, any dispatch of ours that a worker accepted less than the start
  allowance ago and whose agent has not arrived (its job is starting), or that no worker
  has taken yet but may still (created less than ``assign_wait_s`` ago), means "wait";
- a new attempt first deletes the earlier dispatches of ours that no worker took
  (``SendAgent.supersede``);
- only one guardian acts in a room at a time: the one holding the room's lease, a dispatch
  to an agent name no worker serves (``lease_holder``). Two guardians that want a room at
  once each create a lease and list the room's dispatches again: the earliest live lease
  wins (it was created before every other, so every other guardian sees it), the others
  delete theirs and wait. Deleting a dispatch does not reliably stop its job (a worker
  ignores a termination that arrives before the job has started), which is why guardians
  elect one of them before dispatching rather than withdrawing a dispatch afterwards;
- should two agents of ours still meet a caller (a worker or the server could still cause
  it), the later ones are removed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from switchboard.guardian.room import Dispatch, Job, Mark, Person, RoomView

# A guardian holds a room for this long after taking its lease, and takes a new one when
# less than LEASE_MARGIN_S is left: an action begun under a lease ends well within it.
LEASE_TTL_S = 10.0
LEASE_MARGIN_S = 4.0


@dataclass(frozen=True, slots=True)
class Policy:
    agent_name: str
    grace_s: float
    budget_s: float
    backoff_s: float
    backoff_max_s: float
    # A dispatch with no job yet may still get one this long after it was made: the
    # server asks the workers one by one, and a loaded worker answers late. Only then is
    # it refused; deleting it earlier does not stop a worker that then accepts it.
    assign_wait_s: float
    # A job a worker accepted has this long to start and join before the caller gets
    # another dispatch: on a loaded worker a job process can take tens of seconds to start,
    # and a second dispatch then only adds a job that starves the first.
    start_allowance_s: float
    overflow_to: str | None
    overflow_wait_s: float
    room_prefix: str | None = None
    # An agent whose call lease has been silent this long is dead (0: never decided so;
    # then only the server's noticing, about 20 s, counts).
    agent_silence_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Memory:
    """What this guardian observed of one room; empty after a restart."""

    seen_agents: frozenset[str] = frozenset()  # agent identities seen in the room
    agentless_since: float | None = None  # first seen with a caller and no agent


@dataclass(frozen=True, slots=True)
class Leave:
    """Nothing to do: the room needs no agent from us."""

    reason: str


@dataclass(frozen=True, slots=True)
class Wait:
    """Maybe later: look again at ``until`` (or on the next reconciliation)."""

    reason: str
    until: float


@dataclass(frozen=True, slots=True)
class SendAgent:
    """Dispatch our agent: ``mark`` goes into the metadata; ``supersede`` are dispatches of
    ours no worker took, deleted first."""

    caller: Person
    mark: Mark
    reason: str  # "no_agent" (never had one), "agent_left" or "agent_silent"
    previous_job: str | None
    supersede: tuple[str, ...]
    # Agents the server still shows but whose lease says they are dead: removed first, so
    # that the new agent is never a twin of one that was only slow.
    remove: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RemoveAgents:
    """Two agents of ours with one caller (a dispatch accepted after it was deleted, say):
    the later ones leave, the first keeps the call."""

    caller: Person
    identities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Transfer:
    """Out of budget: send the caller elsewhere (a SIP REFER)."""

    caller: Person
    to: str
    since: float


@dataclass(frozen=True, slots=True)
class EndRoom:
    """Out of budget, nobody to transfer to (or the transfer did not take): end the call."""

    caller: Person
    reason: str
    since: float


Decision = Leave | Wait | SendAgent | RemoveAgents | Transfer | EndRoom


def backoff(attempts: int, policy: Policy) -> float:
    """Seconds from attempt number ``attempts`` to the next: doubling, capped."""
    return float(min(policy.backoff_s * 2 ** max(attempts - 1, 0), policy.backoff_max_s))


def find_caller(room: RoomView) -> Person | None:
    return next((p for p in room.people if p.kind == "sip" and p.inbound), None)


def decide(room: RoomView, memory: Memory, now: float, policy: Policy) -> Decision:
    caller = find_caller(room)
    if caller is None:
        return Leave("no caller")
    ours = [d for d in room.dispatches if d.agent_name == policy.agent_name]
    prefixed = policy.room_prefix is not None and room.name.startswith(policy.room_prefix)
    if not ours and not prefixed:
        return Leave("not a room our agent is dispatched to")
    if room.agent_done:
        return Leave("the agent handed the call off")
    agents = sorted(
        (p for p in room.people if p.kind == "agent" and p.agent_name == policy.agent_name),
        key=lambda p: (p.joined_at, p.identity),
    )
    if len(agents) > 1:
        return RemoveAgents(caller, tuple(p.identity for p in agents[1:]))
    silent = silent_agent(room, agents, policy)
    if agents and silent is None:
        return Leave("an agent is with the caller")

    # An agent still in the room (one judged dead) has arrived, whatever memory says.
    seen = memory.seen_agents | {a.identity for a in agents}
    jobs = sorted((j for d in ours for j in d.jobs), key=lambda j: (j.started_at, j.id))
    last_job: Job | None = jobs[-1] if jobs else None

    # This caller's wait began when the last agent that served them was accepted: the one
    # we saw arrive, or, with no memory of the room (a restart), the last job accepted if
    # the call was answered (an agent spoke to the caller). A job accepted whose agent
    # never came served nobody: its caller is still waiting for their first agent.
    served = [j for j in jobs if j.identity in seen]
    if served:
        after = served[-1].started_at
    elif not memory.seen_agents and caller.answered and last_job is not None:
        after = last_job.started_at
    else:
        after = -math.inf
    attempts = sorted(
        (d for d in ours if d.mark is not None and d.created_at > after),
        key=lambda d: (d.created_at, d.id),
    )
    resume = after > -math.inf
    # Each attempt deletes the refused one before it, so the count is in the last mark.
    last_mark = attempts[-1].mark if attempts else None
    if last_mark is not None:
        since = min(d.mark.since for d in attempts if d.mark is not None)
    elif silent is not None and room.lease is not None:
        # Its silence was the grace: the caller has heard nothing since it began.
        since = now - room.lease.silent_s
    elif resume:
        since = memory.agentless_since if memory.agentless_since is not None else now
    else:
        since = caller.joined_at
    out_of_budget = since + policy.budget_s

    # A worker accepted a job whose agent has not arrived: it is starting (a job process
    # on a busy worker can take long). Another dispatch now would not be faster; it would
    # compete with this one for the same cores, and both agents could end up in the room.
    starting = starting_until(jobs, seen, now, policy)
    if starting is not None and silent is None and now < out_of_budget:
        return Wait(
            "a worker accepted the job; its agent is starting", min(starting, out_of_budget)
        )

    # A dispatch no worker has taken yet, recent enough that one may still take it.
    unanswered = [d for d in ours if not d.jobs and d.created_at > after]
    answer_by = max((d.created_at + policy.assign_wait_s for d in unanswered), default=now)
    if silent is None and now < min(answer_by, out_of_budget):
        return Wait("a dispatch is waiting for a worker's answer", min(answer_by, out_of_budget))

    if last_mark is None and silent is None and now < since + policy.grace_s:
        return Wait("grace period", since + policy.grace_s)
    if now >= out_of_budget:
        transferred = any(d.transferred for d in room.dispatches)
        return _overflow(caller, transferred, now, since, policy)
    tried = last_mark.attempt if last_mark is not None else 0
    if last_mark is not None:
        next_at = attempts[-1].created_at + backoff(tried, policy)
        if now < next_at:
            return Wait("back-off", min(next_at, out_of_budget))

    refused = tuple(d.id for d in unanswered)
    if silent is not None:
        reason = "agent_silent"
    elif resume:
        reason = "agent_left"
    else:
        reason = "no_agent"
    return SendAgent(
        caller=caller,
        mark=Mark(resume=resume or silent is not None, attempt=tried + 1, since=since),
        reason=reason,
        previous_job=last_job.id if last_job is not None else None,
        supersede=refused,
        remove=(silent.identity,) if silent is not None else (),
    )


def starting_until(
    jobs: list[Job], seen: frozenset[str], now: float, policy: Policy
) -> float | None:
    """Until when a job is starting: a worker accepted it less than ``start_allowance_s``
    ago, its agent has not arrived, and the server does not say it ended. None: no job is
    starting (every accepted one arrived, ended, or had its time)."""
    ends = [
        j.started_at + policy.start_allowance_s
        for j in jobs
        if j.identity not in seen and not j.ended
    ]
    return max((end for end in ends if end > now), default=None)


def silent_agent(room: RoomView, agents: list[Person], policy: Policy) -> Person | None:
    """The caller's one agent, when its call lease says it is dead: the lease is that
    agent's own (the owner check: a new agent not yet holding the lease is not judged by
    its predecessor's) and has been silent for ``agent_silence_s``."""
    lease = room.lease
    if len(agents) != 1 or lease is None or policy.agent_silence_s <= 0:
        return None
    (agent,) = agents
    if lease.holder != agent.identity or lease.silent_s < policy.agent_silence_s:
        return None
    return agent


def _overflow(
    caller: Person, transferred: bool, now: float, since: float, policy: Policy
) -> Decision:
    no_agent = f"no agent within {policy.budget_s:g} s"
    if not policy.overflow_to:
        return EndRoom(caller, f"{no_agent}; no overflow destination", since)
    if not caller.answered:
        # A REFER needs an answered call. Ending the room makes the SIP service refuse the
        # INVITE instead of letting it ring for minutes: the carrier's own failover (if
        # any) can then take the call.
        return EndRoom(
            caller, f"{no_agent}; the call was never answered, so not transferred", since
        )
    ends_at = since + policy.budget_s + policy.overflow_wait_s
    if not transferred and now < ends_at:
        return Transfer(caller, policy.overflow_to, since)
    if now < ends_at:
        return Wait("the caller is being transferred", ends_at)
    return EndRoom(caller, f"{no_agent}; the transfer did not complete", since)


def lease_holder(dispatches: tuple[Dispatch, ...], now: float, ttl_s: float) -> Dispatch | None:
    """The lease on a room that counts: the earliest of those taken in the last ``ttl_s``
    (ties: the dispatch ID, the same for every guardian)."""
    live = [d for d in dispatches if d.lease is not None and d.created_at > now - ttl_s]
    return min(live, key=lambda d: (d.created_at, d.id), default=None)
