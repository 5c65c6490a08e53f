"""Call leases (``data/leases.py``): a job holds its call and says it is alive; the
guardian reads how long each holder has been silent, on the database's clock, on SQLite
and PostgreSQL. The job's side (``call/liveness.py``) and the guardian's
(``guardian/liveness.py``) on a real database."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any, cast

import pytest
from livekit.agents import JobContext

from switchboard.call.liveness import CallLease, follow_lease, hold_call
from switchboard.call.state import CallState
from switchboard.data import leases
from switchboard.data.db import Database
from switchboard.data.leases import Lease
from switchboard.data.schema import call_leases
from switchboard.guardian.liveness import LeaseWatch, trusted

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]


async def _silence(db: Database, call_id: str, seconds: float) -> None:
    """As if the holder of ``call_id`` had said nothing for ``seconds`` more."""
    async with db.write() as conn:
        await conn.execute(
            call_leases.update()
            .where(call_leases.c.call_id == call_id)
            .values(alive_at=call_leases.c.alive_at - seconds)
        )


async def _wait(what: str, check: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout} s")


async def test_a_holder_refreshes_only_its_own_lease_and_releases_only_its_own(
    db: Database,
) -> None:
    assert await leases.hold(db, "SCL_1", "agent-A")
    assert await leases.refresh(db, "SCL_1", "agent-A")
    assert not await leases.refresh(db, "SCL_1", "agent-B")  # not B's
    # While A is alive, B (a second agent, about to be removed) cannot take the call.
    assert not await leases.hold(db, "SCL_1", "agent-B")
    assert await leases.hold(db, "SCL_1", "agent-A")  # holding again: still A's
    # A silent past TAKEOVER_S (dead, or paused): B takes it over (the resume), and A
    # learns it at its next refresh.
    await _silence(db, "SCL_1", leases.TAKEOVER_S)
    assert await leases.hold(db, "SCL_1", "agent-B")
    assert not await leases.refresh(db, "SCL_1", "agent-A")
    await leases.release(db, "SCL_1", "agent-A")  # A ending does not clear B's lease
    (lease,) = await leases.read_leases(db, "SCL_1")
    assert lease.holder == "agent-B"
    await leases.release(db, "SCL_1", "agent-B")
    assert await leases.read_leases(db) == []


async def test_silence_is_counted_on_the_databases_clock(db: Database) -> None:
    await leases.hold(db, "SCL_1", "agent-A")
    await leases.hold(db, "SCL_2", "agent-B")
    await asyncio.sleep(0.3)  # the silence being measured, not a synchronisation
    await leases.refresh(db, "SCL_2", "agent-B")
    found = {lease.call_id: lease.silent_s for lease in await leases.read_leases(db)}
    assert 0.25 < found["SCL_1"] < 5
    assert 0 <= found["SCL_2"] < found["SCL_1"]
    assert await leases.purge(db, 3600) == 0
    assert await leases.purge(db, 0.2) == 1  # SCL_1, silent longer
    assert [lease.call_id for lease in await leases.read_leases(db)] == ["SCL_2"]


async def test_a_job_holds_its_call_until_another_agent_takes_it_over(db: Database) -> None:
    lost: list[str] = []
    lease = CallLease(db, "SCL_1", "agent-A", lambda: lost.append("lost"), refresh_s=0.05)
    lease.start()

    async def held() -> list[Lease]:
        return await leases.read_leases(db, "SCL_1")

    found: list[Lease] = []

    async def poll() -> None:
        while not found:
            found.extend(await held())
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 10)
    assert found[0].holder == "agent-A"
    # Taken over (the resume, once A had been silent long enough).
    async with db.write() as conn:
        await conn.execute(call_leases.update().values(holder="agent-B"))
    await _wait("the job told it lost the call", lambda: lost == ["lost"])
    assert lease.lost
    await lease.close()  # B's lease stays
    assert [x.holder for x in await held()] == ["agent-B"]


async def test_a_call_that_ends_clears_its_lease(db: Database) -> None:
    lease = CallLease(db, "SCL_1", "agent-A", lambda: None, refresh_s=0.05)
    lease.start()

    async def poll() -> None:
        while not await leases.read_leases(db, "SCL_1"):
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 10)
    await lease.close()
    assert await leases.read_leases(db) == []


class JobDouble:
    """What ``hold_call`` uses of a JobContext: a job in its room, and its shutdown."""

    def __init__(self) -> None:
        self.room = SimpleNamespace(
            isconnected=lambda: True, local_participant=SimpleNamespace(identity="agent-A")
        )
        self.callbacks: list[Any] = []
        self.shutdowns: list[str] = []

    def is_fake_job(self) -> bool:
        return False

    def add_shutdown_callback(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def shutdown(self, reason: str = "") -> None:
        self.shutdowns.append(reason)


async def test_a_job_holds_its_call_from_the_moment_it_meets_its_caller(db: Database) -> None:
    job = JobDouble()
    ctx = cast(JobContext, job)
    lease = hold_call(ctx, "SCL_1", db)
    assert lease is not None
    assert hold_call(ctx, None, db) is None  # no SIP call to hold
    await _wait_for_holder(db, "agent-A")  # before any call state exists
    # Taken over while the call was still being prepared: the job ends, and the call, once
    # its state exists, is marked replaced (its record is left to the new agent).
    async with db.write() as conn:
        await conn.execute(call_leases.update().values(holder="agent-B"))
    await _wait("the job told to end", lambda: job.shutdowns == ["another agent holds the call"])
    state = cast(CallState, SimpleNamespace(replaced=False))
    follow_lease(ctx, state, lease)
    assert state.replaced
    # Released by the job's shutdown (once, whoever closes it first); B's lease stays.
    (close,) = job.callbacks
    await lease.close()
    await close()
    assert [x.holder for x in await leases.read_leases(db, "SCL_1")] == ["agent-B"]


async def _wait_for_holder(db: Database, holder: str) -> None:
    async def poll() -> None:
        while [x.holder for x in await leases.read_leases(db, "SCL_1")] != [holder]:
            await asyncio.sleep(0.02)

    await asyncio.wait_for(poll(), 10)


async def test_a_job_whose_database_is_down_keeps_its_call(down_db: Database) -> None:
    lease = CallLease(down_db, "SCL_1", "agent-A", lambda: None, refresh_s=0.05)
    lease.start()
    await asyncio.sleep(0.2)  # a few failed writes: the call must go on
    assert not lease.lost
    await lease.close()


def test_silence_counts_only_while_the_store_answered() -> None:
    assert trusted(Lease("c", "a", 9.0), readable_for_s=1.5).silent_s == 1.5
    assert trusted(Lease("c", "a", 0.5), readable_for_s=60).silent_s == 0.5


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_guardian_hears_of_a_silent_holder_once_and_not_at_start(
    db: Database,
) -> None:
    await leases.hold(db, "SCL_1", "agent-A")
    await leases.hold(db, "SCL_2", "agent-B")
    await asyncio.sleep(0.3)  # both silent for 0.3 s on the database's clock
    silent: list[str] = []
    clock = Clock()
    watch = LeaseWatch(db, 0.25, silent.append, clock=clock)
    await watch.poll()
    # Just started: it has not watched for a whole silence period yet.
    assert silent == []
    clock.now += 1
    await leases.refresh(db, "SCL_2", "agent-B")
    await watch.poll()
    assert silent == ["SCL_1"]
    await watch.poll()
    assert silent == ["SCL_1"]  # told once per silent holder
    lease = await watch.lease_of("SCL_1")
    assert lease is not None and lease.holder == "agent-A" and lease.silent_s >= 0.25
    # A new holder (the resume) falls silent too: told again (and of SCL_2, silent now).
    await _silence(db, "SCL_1", leases.TAKEOVER_S)
    assert await leases.hold(db, "SCL_1", "agent-C")
    await watch.poll()
    await asyncio.sleep(0.3)
    await watch.poll()
    assert silent[0] == "SCL_1" and sorted(silent[1:]) == ["SCL_1", "SCL_2"]
    await watch.aclose()


async def test_while_the_store_fails_nobody_is_judged_dead(down_db: Database) -> None:
    silent: list[str] = []
    watch = LeaseWatch(down_db, 0.25, silent.append)
    await watch.poll()
    assert watch.readable_for() == 0
    assert await watch.lease_of("SCL_1") is None
    assert silent == []
