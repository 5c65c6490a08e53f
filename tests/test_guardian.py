"""The guardian's decisions, its configuration and its reading of the server's answers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import random
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from aiohttp.test_utils import TestClient, TestServer
from google.protobuf.json_format import MessageToJson
from livekit import api

from switchboard.config.errors import ConfigError
from switchboard.data.leases import Lease
from switchboard.guardian.config import load_guardian_config
from switchboard.guardian.decisions import (
    EndRoom,
    Leave,
    Memory,
    Policy,
    RemoveAgents,
    SendAgent,
    Transfer,
    Wait,
    backoff,
    decide,
    lease_holder,
)
from switchboard.guardian.dispatcher import Dispatcher
from switchboard.guardian.events import GuardianEvents, Overflowed
from switchboard.guardian.reconcile import Guardian
from switchboard.guardian.room import (
    Dispatch,
    Job,
    Mark,
    Person,
    RoomView,
    dispatch_from_api,
    dispatch_metadata,
    lease_metadata,
    parse_lease,
    parse_mark,
    room_from_api,
)
from switchboard.guardian.webhook import MAX_BODY, webhook_app

pytestmark = pytest.mark.unit

AGENT = "switchboard"
POLICY = Policy(
    agent_name=AGENT,
    grace_s=2,
    budget_s=30,
    backoff_s=1,
    backoff_max_s=8,
    assign_wait_s=1,
    start_allowance_s=10,
    overflow_to=None,
    overflow_wait_s=15,
)
T0 = 1_000_000.0  # the caller joins
CALLER = Person("sip_+15105550123", "sip", None, True, T0, "SCL_abc", "+15105550123")
RULE = Dispatch("AD_rule", AGENT, T0 - 0.1, (), None)  # the dispatch rule's, refused


def room(
    *people: Person, dispatches: tuple[Dispatch, ...] = (RULE,), done: bool = False
) -> RoomView:
    return RoomView("call-_+15105550123_x", "RM_1", done, people, dispatches)


def agent(identity: str = "agent-AJ_1", name: str = AGENT) -> Person:
    return Person(identity, "agent", name, False, T0 + 1, None, None)


def attempt(
    n: int,
    at: float,
    *,
    since: float = T0,
    resume: bool = False,
    jobs: tuple[Job, ...] = (),
    id_: str | None = None,
) -> Dispatch:
    return Dispatch(id_ or f"AD_g{n}", AGENT, at, jobs, Mark(resume, n, since))


def lease(holder: str, at: float, id_: str) -> Dispatch:
    return Dispatch(id_, AGENT + ".guardian-lease", at, (), None, lease=holder)


def served_by(job: Job, at: float) -> Dispatch:
    return Dispatch("AD_served", AGENT, at, (job,), None)


# -- fresh calls: grace, then back-off within the budget -------------------------------------
def test_a_caller_alone_gets_an_agent_after_the_grace_period_and_not_before() -> None:
    early = decide(room(CALLER), Memory(), T0 + 1.9, POLICY)
    assert early == Wait("grace period", T0 + 2)
    later = decide(room(CALLER), Memory(), T0 + 2.0, POLICY)
    assert isinstance(later, SendAgent)
    assert later.mark == Mark(resume=False, attempt=1, since=T0)
    assert later.reason == "no_agent"
    assert later.supersede == ("AD_rule",)  # the refused dispatch goes first


@pytest.mark.parametrize(
    ("who", "why"),
    [
        ((CALLER, agent()), "an agent is with the caller"),
        ((agent(),), "no caller"),
        # A dialled leg (no dispatch rule) is not a caller waiting for us.
        ((replace(CALLER, inbound=False),), "no caller"),
    ],
)
def test_nothing_is_done_where_no_caller_is_waiting(who: tuple[Person, ...], why: str) -> None:
    assert decide(room(*who), Memory(), T0 + 100, POLICY) == Leave(why)


def test_of_two_agents_with_one_caller_the_later_ones_leave() -> None:
    first, second, third = (replace(agent(f"agent-AJ_{n}"), joined_at=T0 + n) for n in (1, 2, 3))
    assert decide(room(CALLER, third, first, second), Memory(), T0 + 5, POLICY) == RemoveAgents(
        CALLER, ("agent-AJ_2", "agent-AJ_3")
    )
    other = agent("agent-AJ_9", name="someone-else")  # not ours to judge
    assert decide(room(CALLER, first, other), Memory(), T0 + 5, POLICY) == Leave(
        "an agent is with the caller"
    )


def test_another_agent_name_does_not_count_and_other_rooms_are_not_ours() -> None:
    other = agent(name="someone-else")
    assert isinstance(decide(room(CALLER, other), Memory(), T0 + 3, POLICY), SendAgent)
    theirs = (Dispatch("AD_x", "someone-else", T0, (), None),)
    assert decide(room(CALLER, dispatches=theirs), Memory(), T0 + 3, POLICY) == Leave(
        "not a room our agent is dispatched to"
    )
    by_name = replace(POLICY, room_prefix="call-")
    assert isinstance(decide(room(CALLER, dispatches=theirs), Memory(), T0 + 3, by_name), SendAgent)


def test_an_agent_that_handed_the_call_off_is_not_replaced() -> None:
    assert decide(room(CALLER, done=True), Memory(), T0 + 9, POLICY) == Leave(
        "the agent handed the call off"
    )


def test_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff(n, POLICY) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]


def test_the_next_attempt_waits_its_backoff_and_counts_on_from_the_last_mark() -> None:
    # Attempt 3 was made at T0+6 (attempts 1 and 2 were deleted by their successors).
    tried = room(CALLER, dispatches=(attempt(3, T0 + 6),))
    assert decide(tried, Memory(), T0 + 9.9, POLICY) == Wait("back-off", T0 + 10)
    again = decide(tried, Memory(), T0 + 10, POLICY)
    assert isinstance(again, SendAgent)
    assert again.mark == Mark(resume=False, attempt=4, since=T0)
    assert again.supersede == ("AD_g3",)


def test_a_pending_dispatch_is_never_doubled() -> None:
    # Created half a second ago, no worker yet: whatever the reason, wait.
    pending = room(CALLER, dispatches=(attempt(1, T0 + 2.5),))
    assert isinstance(decide(pending, Memory(), T0 + 3, POLICY), Wait)
    # A worker accepted it; its agent has start_allowance_s to appear.
    job = Job("AJ_2", "agent-AJ_2", T0 + 2.6)
    accepted = room(CALLER, dispatches=(attempt(1, T0 + 2.5, jobs=(job,)),))
    assert decide(accepted, Memory(), T0 + 12.5, POLICY) == Wait(
        "a worker accepted the job; its agent is starting", T0 + 12.6
    )


# -- accepted (a job is starting) is not refused ------------------------------------------------
STARTING = "a worker accepted the job; its agent is starting"


def rule_accepted(*jobs: Job) -> tuple[Dispatch, ...]:
    return (Dispatch("AD_rule", AGENT, T0 - 0.1, jobs, None),)


def test_a_job_a_worker_accepted_is_waited_for_through_its_start_allowance() -> None:
    # The rule's dispatch was accepted at once, but the job process starts late (a busy
    # worker): past the grace and any back-off, the guardian adds no dispatch.
    slow = room(CALLER, dispatches=rule_accepted(Job("AJ_1", "agent-AJ_1", T0 + 0.4)))
    for now in (T0 + 2, T0 + 5, T0 + 10.3):
        assert decide(slow, Memory(), now, POLICY) == Wait(STARTING, T0 + 10.4)
    # While no worker took the rule's dispatch, the same moment is a new dispatch.
    assert isinstance(decide(room(CALLER), Memory(), T0 + 2, POLICY), SendAgent)


def test_a_job_that_never_arrives_is_followed_by_a_fresh_dispatch_not_a_resume() -> None:
    lost = rule_accepted(Job("AJ_1", "agent-AJ_1", T0 + 0.4))
    sent = decide(room(CALLER, dispatches=lost), Memory(), T0 + 10.4, POLICY)
    assert isinstance(sent, SendAgent)
    # Its agent served nobody: the caller still waits for their first one, since joining.
    assert (sent.reason, sent.mark) == ("no_agent", Mark(resume=False, attempt=1, since=T0))
    assert sent.previous_job == "AJ_1"
    # An accepted dispatch is not deleted: its job runs on whatever the server is told.
    assert sent.supersede == ()


ANSWERING = "a dispatch is waiting for a worker's answer"


def test_a_dispatch_no_worker_took_yet_counts_as_refused_only_after_the_assign_wait() -> None:
    # A loaded worker answers the server late: the rule's dispatch (made as the caller
    # came) has no job yet, past the grace. Deleting it now would not stop that worker.
    slow = replace(POLICY, assign_wait_s=5)
    assert decide(room(CALLER), Memory(), T0 + 2, slow) == Wait(ANSWERING, T0 + 4.9)
    sent = decide(room(CALLER), Memory(), T0 + 4.9, slow)
    assert isinstance(sent, SendAgent) and sent.supersede == ("AD_rule",)
    # Each attempt of ours gets the same wait, when it is longer than its back-off ...
    tried = room(CALLER, dispatches=(attempt(1, T0 + 4.9),))
    assert decide(tried, Memory(), T0 + 6, slow) == Wait(ANSWERING, T0 + 9.9)
    assert isinstance(decide(tried, Memory(), T0 + 9.9, slow), SendAgent)
    # ... and no wait goes past the budget.
    last = room(CALLER, dispatches=(attempt(5, T0 + 27),))
    assert decide(last, Memory(), T0 + 28, slow) == Wait(ANSWERING, T0 + 30)
    assert isinstance(decide(last, Memory(), T0 + 30, slow), EndRoom)


def test_a_job_the_server_says_ended_is_not_waited_for() -> None:
    ended = rule_accepted(Job("AJ_1", "agent-AJ_1", T0 + 0.4, ended=True))
    assert isinstance(decide(room(CALLER, dispatches=ended), Memory(), T0 + 2, POLICY), SendAgent)


def test_the_last_accepted_job_sets_the_wait_and_a_new_attempt_waits_for_its_own_job() -> None:
    # The rule's job never came; the guardian's attempt was accepted later: wait for that.
    first = Job("AJ_1", "agent-AJ_1", T0 + 0.4)
    second = Job("AJ_2", "agent-AJ_2", T0 + 10.6)
    tried = (*rule_accepted(first), attempt(1, T0 + 10.5, jobs=(second,)))
    assert decide(room(CALLER, dispatches=tried), Memory(), T0 + 12, POLICY) == Wait(
        STARTING, T0 + 20.6
    )
    again = decide(room(CALLER, dispatches=tried), Memory(), T0 + 20.6, POLICY)
    assert isinstance(again, SendAgent)
    assert again.mark == Mark(resume=False, attempt=2, since=T0)


def test_the_budget_bounds_the_start_allowance() -> None:
    late = rule_accepted(Job("AJ_1", "agent-AJ_1", T0 + 25))
    assert decide(room(CALLER, dispatches=late), Memory(), T0 + 26, POLICY) == Wait(
        STARTING, T0 + 30
    )
    assert decide(room(CALLER, dispatches=late), Memory(), T0 + 30, POLICY) == EndRoom(
        CALLER, "no agent within 30 s; no overflow destination", T0
    )


def test_a_slow_job_that_arrives_after_its_successor_makes_no_second_agent() -> None:
    # Both the late job's agent and the new one are in the room: one leaves.
    new, late = (replace(agent(f"agent-AJ_{n}"), joined_at=T0 + t) for n, t in ((2, 14), (1, 15)))
    assert decide(room(CALLER, late, new), Memory(), T0 + 15.1, POLICY) == RemoveAgents(
        CALLER, ("agent-AJ_1",)
    )


def test_out_of_budget_without_overflow_the_room_is_ended_with_a_reason() -> None:
    tried = room(CALLER, dispatches=(attempt(6, T0 + 25),))
    ended = decide(tried, Memory(), T0 + 30, POLICY)
    assert ended == EndRoom(CALLER, "no agent within 30 s; no overflow destination", T0)
    # The budget bounds the back-off too: no wait beyond it.
    assert decide(tried, Memory(), T0 + 29, POLICY) == Wait("back-off", T0 + 30)


def test_out_of_budget_an_answered_caller_is_transferred_once_then_the_room_ends() -> None:
    policy = replace(POLICY, overflow_to="sip:+15105550199@pbx.example.com")
    talking = replace(CALLER, answered=True)
    tried = room(talking, dispatches=(attempt(6, T0 + 25),))
    assert decide(tried, Memory(), T0 + 30, policy) == Transfer(
        talking, "sip:+15105550199@pbx.example.com", T0
    )
    # The guardian that sent the REFER said so in the room, for every guardian to see.
    done = replace(lease("guardian-a", T0 + 30, "AD_t"), transferred=True)
    sent = room(talking, dispatches=(attempt(6, T0 + 25), done))
    assert decide(sent, Memory(), T0 + 31, policy) == Wait(
        "the caller is being transferred", T0 + 45
    )
    assert decide(sent, Memory(), T0 + 45, policy) == EndRoom(
        talking, "no agent within 30 s; the transfer did not complete", T0
    )


def test_out_of_budget_a_ringing_caller_cannot_be_transferred_and_the_room_ends() -> None:
    policy = replace(POLICY, overflow_to="sip:+15105550199@pbx.example.com")
    tried = room(CALLER, dispatches=(attempt(6, T0 + 25),))
    assert decide(tried, Memory(), T0 + 30, policy) == EndRoom(
        CALLER, "no agent within 30 s; the call was never answered, so not transferred", T0
    )


# -- resume: an agent left while its caller stayed ---------------------------------------------
JOB = Job("AJ_1", "agent-AJ_1", T0 + 0.5)
SERVED = (Dispatch("AD_rule", AGENT, T0 - 0.1, (JOB,), None),)


def test_an_agent_that_left_is_replaced_by_a_resume_after_the_grace() -> None:
    memory = Memory(seen_agents=frozenset({"agent-AJ_1"}), agentless_since=T0 + 60)
    gone = room(CALLER, dispatches=SERVED)
    assert decide(gone, memory, T0 + 61, POLICY) == Wait("grace period", T0 + 62)
    resumed = decide(gone, memory, T0 + 62, POLICY)
    assert isinstance(resumed, SendAgent)
    assert resumed.mark == Mark(resume=True, attempt=1, since=T0 + 60)
    assert (resumed.reason, resumed.previous_job) == ("agent_left", "AJ_1")
    assert resumed.supersede == ()  # the rule's dispatch has its (dead) job: keep it


def test_resume_attempts_count_from_the_agent_that_left_not_from_the_call() -> None:
    memory = Memory(seen_agents=frozenset({"agent-AJ_1"}), agentless_since=T0 + 60)
    # A fresh attempt made before the first agent came is history, not this episode.
    old = attempt(1, T0 + 0.2, id_="AD_old")
    retry = attempt(1, T0 + 62, since=T0 + 60, resume=True)
    gone = room(CALLER, dispatches=(*SERVED, old, retry))
    again = decide(gone, memory, T0 + 63, POLICY)
    assert isinstance(again, SendAgent)
    assert again.mark == Mark(resume=True, attempt=2, since=T0 + 60)


def test_a_restarted_guardian_neither_doubles_a_joining_agent_nor_restarts_a_long_call() -> None:
    # No memory: the job accepted 3 s ago may still be joining.
    joining = room(CALLER, dispatches=(served_by(Job("AJ_9", "agent-AJ_9", T0 + 3), T0 + 2.9),))
    assert isinstance(decide(joining, Memory(), T0 + 6, POLICY), Wait)
    # An hour-long call whose agent is gone: a resume, its budget counted from now (the
    # call was answered: an agent talked to the caller).
    gone = room(replace(CALLER, answered=True), dispatches=SERVED)
    memory = Memory(agentless_since=T0 + 3600)
    assert decide(gone, memory, T0 + 3600, POLICY) == Wait("grace period", T0 + 3602)
    resumed = decide(gone, memory, T0 + 3602, POLICY)
    assert isinstance(resumed, SendAgent) and resumed.mark.resume
    # A caller still ringing never had an agent: the accepted job that never came (past
    # its allowance) is no reason to resume a call nobody answered.
    ringing = decide(room(CALLER, dispatches=SERVED), Memory(), T0 + 11, POLICY)
    assert isinstance(ringing, SendAgent)
    assert (ringing.reason, ringing.mark.resume) == ("no_agent", False)


# -- a dead agent the server still shows: its call lease is silent ----------------------------
SILENT = replace(POLICY, agent_silence_s=2.5)


def test_an_agent_whose_lease_is_silent_is_removed_and_resumed_at_once() -> None:
    dead = room(CALLER, agent(), dispatches=SERVED)
    dead = replace(dead, lease=Lease("SCL_abc", "agent-AJ_1", 2.6))
    # No memory (a restarted guardian): the agent in the room is the one that arrived.
    sent = decide(dead, Memory(), T0 + 100, SILENT)
    assert isinstance(sent, SendAgent)
    assert sent.remove == ("agent-AJ_1",)  # out of the room before the new one comes
    assert (sent.reason, sent.previous_job) == ("agent_silent", "AJ_1")
    # Its silence was the grace: no other wait, and the budget runs from its last word.
    assert sent.mark == Mark(resume=True, attempt=1, since=T0 + 100 - 2.6)


@pytest.mark.parametrize(
    ("lease", "policy"),
    [
        (Lease("SCL_abc", "agent-AJ_1", 2.4), SILENT),  # not silent long enough
        (Lease("SCL_abc", "agent-AJ_1", 60), POLICY),  # judging by leases is off
        # Another holder's lease (the agent it replaced): a new agent not holding its
        # lease yet is not judged by its predecessor's silence.
        (Lease("SCL_abc", "agent-AJ_0", 60), SILENT),
        (None, SILENT),  # no lease: only the server's word counts
    ],
)
def test_an_agent_is_judged_dead_only_by_its_own_lease_silent_long_enough(
    lease: Lease | None, policy: Policy
) -> None:
    alive = replace(room(CALLER, agent(), dispatches=SERVED), lease=lease)
    assert decide(alive, Memory(), T0 + 100, policy) == Leave("an agent is with the caller")


def test_once_the_silent_agent_is_removed_its_replacement_is_not_doubled() -> None:
    # The guardian removed it and dispatched; the server no longer shows it, the lease is
    # still the dead agent's. The dispatch is pending, then accepted: wait, both times.
    resume = attempt(1, T0 + 100, since=T0 + 97.4, resume=True)
    after = replace(room(CALLER, dispatches=(*SERVED, resume)), lease=Lease("x", "agent-AJ_1", 3))
    memory = Memory(seen_agents=frozenset({"agent-AJ_1"}), agentless_since=T0 + 100)
    assert isinstance(decide(after, memory, T0 + 100.5, SILENT), Wait)
    job = Job("AJ_2", "agent-AJ_2", T0 + 100.2)
    taken = replace(after, dispatches=(*SERVED, replace(resume, jobs=(job,))))
    assert isinstance(decide(taken, memory, T0 + 101.5, SILENT), Wait)
    # The new agent arrived: its predecessor's silent lease does not judge it.
    arrived = replace(taken, people=(CALLER, agent("agent-AJ_2")))
    assert decide(arrived, memory, T0 + 102, SILENT) == Leave("an agent is with the caller")


def test_jobs_whose_agents_never_arrive_do_not_reset_the_budget() -> None:
    # Our attempts were accepted but their agents never joined (seen: only the first one).
    memory = Memory(seen_agents=frozenset({"agent-AJ_1"}), agentless_since=T0 + 60)
    ghost = Job("AJ_2", "agent-AJ_2", T0 + 62.1)
    tried = attempt(1, T0 + 62, since=T0 + 60, resume=True, jobs=(ghost,))
    gone = room(CALLER, dispatches=(*SERVED, tried))
    again = decide(gone, memory, T0 + 89, POLICY)
    assert isinstance(again, SendAgent)
    assert again.mark == Mark(resume=True, attempt=2, since=T0 + 60)
    assert isinstance(decide(gone, memory, T0 + 90, POLICY), EndRoom)


# -- two guardians --------------------------------------------------------------------------
def test_the_earliest_live_lease_holds_the_room_for_every_guardian() -> None:
    a, b = lease("guardian-a", T0 + 2.30, "AD_b"), lease("guardian-b", T0 + 2.25, "AD_a")
    assert lease_holder((RULE, a, b), T0 + 2.4, 10) == b
    # Same instant: the dispatch ID breaks the tie, the same way for both guardians.
    c = lease("guardian-c", T0 + 2.30, "AD_c")
    assert lease_holder((c, a), T0 + 2.4, 10) == a
    # A lease older than its time to live holds nothing: its guardian may be gone.
    assert lease_holder((RULE, b), T0 + 12.25, 10) is None
    assert lease_holder((RULE, attempt(1, T0 + 2)), T0 + 3, 10) is None


def test_a_second_guardian_sees_the_first_ones_dispatch_and_waits() -> None:
    first = decide(room(CALLER), Memory(), T0 + 2, POLICY)
    assert isinstance(first, SendAgent)
    # What the server lists once the first guardian's dispatch exists (the rule's deleted):
    after = room(CALLER, dispatches=(attempt(1, T0 + 2.05),))
    assert isinstance(decide(after, Memory(), T0 + 2.1, POLICY), Wait)


# -- the metadata and the server's answers ------------------------------------------------------
def test_the_dispatch_metadata_is_json_the_agent_and_other_guardians_read() -> None:
    mark = Mark(resume=True, attempt=2, since=T0 + 60.12345)
    text = dispatch_metadata(mark, reason="agent_left", call_id="SCL_abc", previous_job="AJ_1")
    assert json.loads(text) == {
        "by": "switchboard-guardian",
        "resume": True,
        "reason": "agent_left",
        "attempt": 2,
        "since": 1000060.123,
        "call_id": "SCL_abc",
        "previous_job": "AJ_1",
    }
    assert parse_mark(text) == Mark(True, 2, 1000060.123)


@pytest.mark.parametrize(
    "metadata",
    [
        "",
        "not json",
        "[]",
        '{"resume": true, "attempt": 1, "since": 1}',
        '{"by": "switchboard-guardian", "resume": "yes", "attempt": 1, "since": 1}',
        '{"by": "switchboard-guardian", "resume": true, "attempt": 0, "since": 1}',
        '{"by": "switchboard-guardian", "resume": true, "attempt": true, "since": 1}',
        '{"by": "switchboard-guardian", "resume": true, "attempt": 1, "since": NaN}',
    ],
)
def test_metadata_that_is_not_a_guardian_mark_is_not_taken_for_one(metadata: str) -> None:
    assert parse_mark(metadata) is None


def test_the_servers_answers_become_room_views() -> None:
    info = api.ParticipantInfo(
        identity="sip_+15105550123",
        kind=api.ParticipantInfo.Kind.SIP,
        joined_at_ms=1_000_000_500,
        attributes={
            "sip.ruleID": "SDR_1",
            "sip.callID": "SCL_abc",
            "sip.phoneNumber": "+15105550123",
            "sip.callStatus": "active",
        },
    )
    bot = api.ParticipantInfo(
        identity="agent-AJ_1",
        kind=api.ParticipantInfo.Kind.AGENT,
        attributes={"lk.agent_name": AGENT},
    )
    gone = api.ParticipantInfo(identity="x", state=api.ParticipantInfo.State.DISCONNECTED)
    d = api.AgentDispatch(
        id="AD_1",
        agent_name=AGENT,
        metadata='{"x": 1}',
        state=api.AgentDispatchState(
            created_at=1_000_000_000_000_000_000,
            jobs=[
                api.Job(
                    id="AJ_1",
                    state=api.JobState(
                        participant_identity="agent-AJ_1", started_at=1_000_000_001_000_000_000
                    ),
                ),
                api.Job(id="AJ_0", state=api.JobState()),
                api.Job(
                    id="AJ_2",
                    state=api.JobState(
                        participant_identity="agent-AJ_2",
                        started_at=1_000_000_002_000_000_000,
                        status=api.JobStatus.JS_FAILED,
                    ),
                ),
            ],
        ),
    )
    view = room_from_api(
        api.Room(name="call-1", sid="RM_1", metadata='{"switchboard_agent_done": true}'),
        [info, bot, gone],
        [d],
    )
    assert view.agent_done
    assert [p.identity for p in view.people] == ["sip_+15105550123", "agent-AJ_1"]
    caller, robot = view.people
    assert caller.answered
    assert (caller.kind, caller.inbound, caller.joined_at, caller.call_id) == (
        "sip",
        True,
        1_000_000.5,
        "SCL_abc",
    )
    assert (robot.kind, robot.agent_name) == ("agent", AGENT)
    assert dispatch_from_api(d) == Dispatch(
        "AD_1",
        AGENT,
        1_000_000_000.0,
        (
            Job("AJ_1", "agent-AJ_1", 1_000_000_001.0),
            Job("AJ_2", "agent-AJ_2", 1_000_000_002.0, ended=True),
        ),
        None,
    )


# -- configuration ---------------------------------------------------------------------------
BASE = {"LIVEKIT_URL": "wss://x.livekit.cloud", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}


def test_the_configuration_has_defaults_and_the_api_url() -> None:
    config = load_guardian_config(BASE)
    assert config.livekit_url == "https://x.livekit.cloud"
    policy = config.policy
    assert (policy.grace_s, policy.budget_s, policy.overflow_to, config.port) == (2, 30, None, 8090)


def test_a_dead_agent_is_judged_by_a_silence_of_at_least_two_lease_refreshes() -> None:
    config = load_guardian_config({**BASE, "DATABASE_URL": "postgresql://u:p@db/calls"})
    assert (config.policy.agent_silence_s, config.database_url) == (
        2.5,
        "postgresql://u:p@db/calls",
    )
    off = load_guardian_config({**BASE, "SWITCHBOARD_GUARDIAN_AGENT_SILENCE": "0"})
    assert off.policy.agent_silence_s == 0
    with pytest.raises(ConfigError) as e:
        load_guardian_config({**BASE, "SWITCHBOARD_GUARDIAN_AGENT_SILENCE": "1"})
    assert "SWITCHBOARD_GUARDIAN_AGENT_SILENCE" in str(e.value)
    assert "set it to 0 (off) or at least 2" in str(e.value)


def test_the_renamed_join_timeout_is_refused_with_its_new_name() -> None:
    with pytest.raises(ConfigError) as e:
        load_guardian_config({**BASE, "SWITCHBOARD_GUARDIAN_JOIN_TIMEOUT": "10"})
    assert "SWITCHBOARD_GUARDIAN_START_ALLOWANCE" in str(e.value)


def test_every_configuration_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        load_guardian_config(
            {
                "LIVEKIT_URL": "ftp://x",
                "SWITCHBOARD_GUARDIAN_GRACE": "-1",
                "SWITCHBOARD_GUARDIAN_BUDGET": "nan",
                "SWITCHBOARD_GUARDIAN_OVERFLOW": "+15105550199",
                "SWITCHBOARD_GUARDIAN_PORT": "http",
                "SWITCHBOARD_AGENT_NAME": "a b",
            }
        )
    text = str(e.value)
    for name in (
        "LIVEKIT_API_KEY is not set",
        "LIVEKIT_URL='ftp://x'",
        "GRACE='-1'",
        "BUDGET='nan'",
        "OVERFLOW='+15105550199' must be a SIP or tel URI",
        "PORT='http'",
        "SWITCHBOARD_AGENT_NAME='a b'",
    ):
        assert name in text
    assert len(e.value.problems) == 8


# -- the webhook receiver --------------------------------------------------------------------
def _token(body: str, secret: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken("devkey", secret).with_sha256(digest).to_jwt()


async def test_only_webhooks_signed_with_our_secret_reach_the_guardian() -> None:
    secret = "a-secret-of-more-than-thirty-two-characters"
    got: list[api.WebhookEvent] = []
    receiver = api.WebhookReceiver(api.TokenVerifier("devkey", secret))
    body = MessageToJson(api.WebhookEvent(event="participant_left", room=api.Room(name="r")))
    async with TestClient(TestServer(webhook_app(receiver, got.append))) as client:
        for headers, data in [
            ({}, body),
            ({"Authorization": _token(body, "another-secret-of-thirty-two-characters")}, body),
            ({"Authorization": _token(body, secret)}, body.replace('"r"', '"s"')),
            ({"Authorization": "not a jwt"}, body),
        ]:
            resp = await client.post("/webhook", data=data, headers=headers)
            assert resp.status == 401
        assert got == []
        resp = await client.post(
            "/webhook", data=body, headers={"Authorization": _token(body, secret)}
        )
        assert resp.status == 200
        assert [(e.event, e.room.name) for e in got] == [("participant_left", "r")]
        too_big = "x" * (MAX_BODY + 1)
        resp = await client.post("/webhook", data=too_big, headers={"Authorization": "x"})
        assert resp.status == 413


# -- two guardians at once, against a server double ------------------------------------------
class FakeServer:
    """The room and dispatch API of one room, as livekit-server answers it; each call
    yields to the event loop a seeded-random number of times, so that two guardians'
    requests interleave differently from one seed to the next."""

    def __init__(self, seed: int, now: float) -> None:
        self.rng = random.Random(seed)
        self.clock = now
        self.dispatches: dict[str, api.AgentDispatch] = {
            "AD_rule": api.AgentDispatch(
                id="AD_rule",
                agent_name=AGENT,
                state=api.AgentDispatchState(created_at=int(T0 * 1e9)),
            )
        }
        self.caller = api.ParticipantInfo(
            identity="sip_+15105550123",
            kind=api.ParticipantInfo.Kind.SIP,
            joined_at=int(T0),
            attributes={"sip.ruleID": "SDR_1", "sip.phoneNumber": "+15105550123"},
        )
        self.room = self.agent_dispatch = self.sip = self
        self.ids = itertools.count()

    async def _turns(self) -> None:
        for _ in range(self.rng.randrange(4)):
            await asyncio.sleep(0)

    async def list_rooms(self, _req: api.ListRoomsRequest) -> api.ListRoomsResponse:
        await self._turns()
        return api.ListRoomsResponse(rooms=[api.Room(name="call-1", sid="RM_1")])

    async def list_participants(
        self, _req: api.ListParticipantsRequest
    ) -> api.ListParticipantsResponse:
        await self._turns()
        return api.ListParticipantsResponse(participants=[self.caller])

    async def list_dispatch(self, _room: str) -> list[api.AgentDispatch]:
        await self._turns()
        return list(self.dispatches.values())

    async def create_dispatch(self, req: api.CreateAgentDispatchRequest) -> api.AgentDispatch:
        await self._turns()
        self.clock += 0.001  # the server's clock, as it stamps the dispatch
        made = api.AgentDispatch(
            id=f"AD_{next(self.ids)}",
            agent_name=req.agent_name,
            metadata=req.metadata,
            state=api.AgentDispatchState(created_at=int(self.clock * 1e9)),
        )
        self.dispatches[made.id] = made
        await self._turns()
        return made

    async def delete_dispatch(self, dispatch_id: str, _room: str) -> api.AgentDispatch:
        await self._turns()
        if dispatch_id not in self.dispatches:
            raise api.TwirpError(api.TwirpErrorCode.NOT_FOUND, "dispatch ID not found", status=404)
        return self.dispatches.pop(dispatch_id)


@pytest.mark.parametrize("seed", range(40))
async def test_two_guardians_deciding_at_once_leave_one_dispatch(seed: int) -> None:
    server = FakeServer(seed, T0 + 2.5)
    lk = cast(api.LiveKitAPI, server)
    dispatchers = [Dispatcher(lk, POLICY, GuardianEvents(None)) for _ in range(2)]
    guardians = [
        Guardian(lk, POLICY, d, period_s=60, clock=lambda: server.clock) for d in dispatchers
    ]
    try:
        await asyncio.gather(*(g.check("call-1") for g in guardians))
    finally:
        for g in guardians:
            await g.aclose()
    made = [parse_mark(d.metadata) for d in server.dispatches.values() if d.agent_name == AGENT]
    assert made == [Mark(resume=False, attempt=1, since=T0)], server.dispatches
    (held,) = [d for d in server.dispatches.values() if d.agent_name != AGENT]
    assert parse_lease(held.metadata) in {d.guardian_id for d in dispatchers}


class LateJobServer(FakeServer):
    """The rule's dispatch is taken by a worker after the guardian's first look: the job
    shows from the second listing on (livekit-server on a busy machine)."""

    def __init__(self) -> None:
        super().__init__(0, T0 + 2.5)
        self.listings = 0

    async def list_dispatch(self, room: str) -> list[api.AgentDispatch]:
        self.listings += 1
        if self.listings == 2:
            job = api.Job(
                id="AJ_1",
                state=api.JobState(
                    participant_identity="agent-AJ_1", started_at=int((T0 + 2.4) * 1e9)
                ),
            )
            self.dispatches["AD_rule"].state.jobs.append(job)
        return await super().list_dispatch(room)


async def test_a_dispatch_is_decided_on_a_fresh_look_not_an_old_one() -> None:
    server = LateJobServer()
    lk = cast(api.LiveKitAPI, server)
    guardian = Guardian(
        lk,
        POLICY,
        Dispatcher(lk, POLICY, GuardianEvents(None)),
        period_s=60,
        clock=lambda: server.clock,
    )
    try:
        await guardian.check("call-1")
    finally:
        await guardian.aclose()
    # The first look said "refused"; the fresh one shows the job starting: no dispatch.
    assert [d.id for d in server.dispatches.values() if d.agent_name == AGENT] == ["AD_rule"]


def test_an_event_is_one_json_line_marked_as_the_guardians(tmp_path: Path) -> None:
    events = GuardianEvents(tmp_path / "events.jsonl")
    events.emit(
        Overflowed(
            room_id="RM_1",
            caller_number="+1510••••0123",
            action="end_room",
            reason="no agent within 30 s; no overflow destination",
            waited_s=30.0,
        )
    )
    (line,) = (tmp_path / "events.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert record.pop("ts") > 0
    assert record == {
        "event": "overflowed",
        "component": "guardian",
        "room_id": "RM_1",
        "caller_number": "+1510••••0123",
        "action": "end_room",
        "waited_s": 30.0,
        "reason": "no agent within 30 s; no overflow destination",
        "to": None,
        "outcome": None,
    }


def test_a_lease_says_whose_it_is_and_whether_the_caller_was_transferred() -> None:
    made = api.AgentDispatch(
        id="AD_l",
        agent_name=AGENT + ".guardian-lease",
        metadata=lease_metadata("g1", transferred=True),
        state=api.AgentDispatchState(created_at=1_000_000_000_000_000_000),
    )
    assert dispatch_from_api(made) == Dispatch(
        "AD_l", AGENT + ".guardian-lease", 1_000_000_000.0, (), None, lease="g1", transferred=True
    )
    # The same metadata on a dispatch of the agent itself is no lease.
    assert (
        dispatch_from_api(api.AgentDispatch(agent_name=AGENT, metadata=made.metadata)).lease is None
    )
