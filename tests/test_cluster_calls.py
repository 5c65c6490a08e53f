"""Two livekit-server nodes on the lab's Redis (distributed mode): calls land on both and
are answered, and a node drained by SIGTERM takes no new room and finishes its calls.

The second node joins the running lab for this module; the SIP service and the workers
stay connected to node 1, which relays participants to the node that holds their room
(livekit-server's routing through Redis). Which node holds a room: Redis's
``room_node_map`` hash (room name -> node ID), livekit-server's own bookkeeping.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from lab.phone import CallResult
from lab.procs import alive
from lab.testing.calls import call_lab
from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab

NODE = 2
_NODE_ID = re.compile(r'"nodeID": "(ND_[A-Za-z0-9]+)"')


@dataclass(frozen=True)
class Cluster:
    lab: LabHandle
    first: str  # node IDs
    second: str
    second_proc: str  # its process name

    def placements(self) -> dict[str, str]:
        """Room name -> node ID, for the rooms that exist now."""
        return self.lab.room_nodes()


def _node_id(log: str) -> str:
    found = _NODE_ID.search(log)
    assert found, "livekit-server logged no node ID"
    return found[1]


@pytest.fixture(scope="module")
def cluster(lab: LabHandle) -> Iterator[Cluster]:
    name = lab.lab.start_node(NODE)
    try:
        logs = {p.name: p.log for p in lab.lab.procs.load()}
        yield Cluster(
            lab,
            _node_id(logs["livekit-server"].read_text()),
            _node_id(logs[name].read_text()),
            name,
        )
    finally:
        lab.lab.procs.stop(name, timeout_s=5)


async def _calls_watching_nodes(
    cluster: Cluster, numbers: list[str]
) -> tuple[list[CallResult], dict[str, str]]:
    """Place the calls at once; return their results and where their rooms were."""
    lab = cluster.lab
    seen: dict[str, str] = {}
    calls = [
        # Hung up 2 s after the agent is heard: answered is what is proved here (the
        # drain test follows a call to its end).
        asyncio.create_task(call_lab(lab, from_number=n, hangup=2.0, timeout=60))
        for n in numbers
    ]
    try:
        while not all(c.done() for c in calls):
            seen.update(await asyncio.to_thread(cluster.placements))
            await asyncio.sleep(0.2)
        return [c.result() for c in calls], seen
    finally:
        for c in calls:
            c.cancel()


async def test_calls_land_on_both_nodes_and_are_answered(cluster: Cluster) -> None:
    # Rooms go to a random node: three rounds of four calls leave both nodes unused by
    # chance once in 2**11.
    placed: dict[str, str] = {}
    for round_ in range(3):
        numbers = [f"+4420712310{round_}{i}" for i in range(4)]
        results, seen = await _calls_watching_nodes(cluster, numbers)
        for r in results:
            assert r.answered and r.first_audio_at is not None, r.sipp_log_tail
        placed.update(seen)
        if {cluster.first, cluster.second} <= set(placed.values()):
            break
    counts = {node: list(placed.values()).count(node) for node in (cluster.first, cluster.second)}
    print(f"\nrooms per node: {counts}; load {os.getloadavg()[0]:.1f}")
    assert all(counts.values()), counts


async def test_a_drained_node_takes_no_new_room_and_finishes_its_calls(cluster: Cluster) -> None:
    lab = cluster.lab
    # A call on node 2 (placed again until one lands there).
    for attempt in range(8):
        before = set(cluster.placements())
        elsewhere = asyncio.Event()
        call = asyncio.create_task(
            call_lab(
                lab,
                from_number=f"+44207123200{attempt}",
                hangup="remote",
                hangup_now=elsewhere,
                timeout=120,
            )
        )
        room = await _room_of_call(cluster, call, before)
        if room is not None and cluster.placements().get(room) == cluster.second:
            break
        elsewhere.set()  # on node 1: not the call this test follows
        await asyncio.wait_for(call, 60)
    else:
        pytest.fail("no call landed on node 2 in 8 tries")
    pid = next(p.pid for p in lab.lab.procs.load() if p.name == cluster.second_proc)
    os.killpg(pid, signal.SIGTERM)
    drained_at = time.time()
    try:
        # New calls while node 2 drains: every room on node 1, every call answered.
        numbers = [f"+4420712330{i}" for i in range(4)]
        results, seen = await _calls_watching_nodes(cluster, numbers)
        kept = await asyncio.wait_for(call, 120)
    finally:
        call.cancel()
    # Only these calls' rooms: earlier ones can linger on either node for a while.
    new_rooms = {r: n for r, n in seen.items() if any(f"_{n_}_" in r for n_ in numbers)}
    assert new_rooms and set(new_rooms.values()) == {cluster.first}, new_rooms
    assert all(r.answered for r in results)
    # The call on the draining node went on to its end: the agent said it all, hung up.
    assert kept.answered and kept.ended_by == "remote", kept.sipp_log_tail
    assert kept.ended_at is not None and kept.ended_at > drained_at
    # Then, its last participant gone, the node stops by itself (it checks every 5 s).
    deadline = time.monotonic() + 60
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert not alive(pid), "the drained node did not stop once its calls had ended"
    print(
        f"\ndrained node: its call went on {kept.ended_at - drained_at:.1f} s after SIGTERM; "
        f"{len(new_rooms)} new rooms, all on node 1; load {os.getloadavg()[0]:.1f}"
    )


async def _room_of_call(
    cluster: Cluster, call: asyncio.Task[CallResult], before: set[str]
) -> str | None:
    """The room of the call just placed: the one room that appeared since ``before`` (the
    test's calls are the only ones in the lab at that moment)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not call.done():
        new = set(cluster.placements()) - before
        if new:
            return next(iter(new))
        await asyncio.sleep(0.1)
    return None
