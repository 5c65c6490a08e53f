"""The guardian's loop: look at rooms, decide, act.

A room is looked at on every reconciliation (every ``period_s``: webhooks can be lost), as
soon as a webhook says something changed in it, and when a decision said "wait until".
Looks at one room never overlap within this process; across processes, see
``decisions.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

import aiohttp
from livekit import api

from switchboard.guardian.decisions import (
    Decision,
    EndRoom,
    Leave,
    Memory,
    Policy,
    RemoveAgents,
    SendAgent,
    Transfer,
    Wait,
    decide,
    find_caller,
)
from switchboard.guardian.dispatcher import Dispatcher
from switchboard.guardian.liveness import LeaseWatch
from switchboard.guardian.room import RoomView, room_from_api

logger = logging.getLogger("switchboard.guardian")

# What the server API raises when the server is unreachable, restarting or refuses a call.
SERVER_ERRORS = (api.TwirpError, aiohttp.ClientError, OSError, TimeoutError)
# Rooms looked at in parallel during a reconciliation: bounded, so that a server with many
# rooms is not flooded with requests.
PARALLEL_ROOMS = 8


class Guardian:
    def __init__(
        self,
        lk: api.LiveKitAPI,
        policy: Policy,
        dispatcher: Dispatcher,
        *,
        period_s: float,
        clock: Callable[[], float] = time.time,
        leases: LeaseWatch | None = None,
    ) -> None:
        self._lk = lk
        self._policy = policy
        self._dispatcher = dispatcher
        self._period_s = period_s
        self._clock = clock
        self._memory: dict[str, Memory] = {}  # by room name
        self._locks: dict[str, asyncio.Lock] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._leases = leases
        self._room_of_call: dict[str, str] = {}  # the caller's SIP call ID -> room name

    async def run(self) -> None:
        """Reconcile every ``period_s`` until cancelled."""
        while True:
            try:
                await self.reconcile()
            except SERVER_ERRORS as e:
                # The server is down or restarting: say so, and try again next period.
                logger.warning("reconciliation failed: %s", e)
            await asyncio.sleep(self._period_s)

    async def reconcile(self) -> None:
        listed = (await self._lk.room.list_rooms(api.ListRoomsRequest())).rooms
        names = {r.name for r in listed}
        for gone in set(self._memory) - names:
            self._forget(gone)
        gate = asyncio.Semaphore(PARALLEL_ROOMS)

        async def one(room: api.Room) -> None:
            async with gate:
                try:
                    await self.check(room.name, room)
                except SERVER_ERRORS as e:  # one room's trouble must not skip the others
                    logger.warning("looking at room %s failed: %s", room.sid, e)

        await asyncio.gather(*(one(r) for r in listed))

    def wake(self, room_name: str) -> None:
        """Look at ``room_name`` now (a webhook said something changed there)."""
        self._spawn(self.check(room_name))

    def call_silent(self, call_id: str) -> None:
        """The lease of ``call_id`` fell silent: look at its room now (if known; else the
        next reconciliation finds it)."""
        if (room_name := self._room_of_call.get(call_id)) is not None:
            self.wake(room_name)

    def saw_agent_leave(self, room_name: str, identity: str, at: float) -> None:
        memory = self._memory.get(room_name, Memory())
        self._memory[room_name] = replace(
            memory,
            seen_agents=memory.seen_agents | {identity},
            agentless_since=memory.agentless_since if memory.agentless_since else at,
        )
        self.wake(room_name)

    def saw_agent_join(self, room_name: str, identity: str) -> None:
        memory = self._memory.get(room_name, Memory())
        self._memory[room_name] = replace(
            memory, seen_agents=memory.seen_agents | {identity}, agentless_since=None
        )

    def room_finished(self, room_name: str) -> None:
        self._forget(room_name)

    async def check(self, room_name: str, room: api.Room | None = None) -> None:
        lock = self._locks.setdefault(room_name, asyncio.Lock())
        async with lock:
            looked = await self._look_and_decide(room_name, room)
            if looked is None:
                return
            view, now, decision = looked
            if self._nothing_now(room_name, now, decision):
                return
            if not await self._dispatcher.acquire(view, now):
                # Another guardian acts here; look again in case it goes away.
                self._schedule(room_name, self._policy.backoff_s)
                return
            if isinstance(decision, SendAgent):
                # The look can be seconds old on a busy machine, and a worker may have
                # taken a dispatch since (an accepted job shows up late): a new dispatch
                # is decided on a fresh look, taken under the room's lease.
                looked = await self._look_and_decide(room_name, None)
                if looked is None:
                    return
                view, now, decision = looked
                if self._nothing_now(room_name, now, decision):
                    return
            if isinstance(decision, SendAgent):
                await self._dispatcher.send_agent(view, decision)
                # Look again once a worker could have taken it (or refused).
                self._schedule(room_name, self._policy.backoff_s)
            elif isinstance(decision, RemoveAgents):
                await self._dispatcher.remove_agents(view, decision)
            elif isinstance(decision, Transfer):
                await self._dispatcher.transfer(view, decision, now)
                self._schedule(room_name, self._policy.overflow_wait_s)
            elif isinstance(decision, EndRoom):
                await self._dispatcher.end_room(view, decision, now)
                self._forget(room_name)

    async def _look_and_decide(
        self, room_name: str, room: api.Room | None
    ) -> tuple[RoomView, float, Decision] | None:
        """A look at the room and what to do now; None (and forgotten) when it is gone."""
        view = await self._look(room_name, room)
        if view is None:
            self._forget(room_name)
            return None
        now = self._clock()
        decision = decide(view, self._observe(view, now), now, self._policy)
        logger.debug("room %s: %s", view.sid, decision)
        return view, now, decision

    def _nothing_now(self, room_name: str, now: float, decision: Decision) -> bool:
        """True for a decision that acts on nothing now: a wait (looked at again when it
        ends) or leaving the room alone."""
        if isinstance(decision, Wait):
            self._schedule(room_name, decision.until - now)
            return True
        return isinstance(decision, Leave)

    async def _look(self, room_name: str, room: api.Room | None) -> RoomView | None:
        try:
            if room is None:
                found = await self._lk.room.list_rooms(api.ListRoomsRequest(names=[room_name]))
                if not found.rooms:
                    return None
                room = found.rooms[0]
            people = await self._lk.room.list_participants(
                api.ListParticipantsRequest(room=room_name)
            )
            dispatches = await self._lk.agent_dispatch.list_dispatch(room_name)
        except api.TwirpError as e:
            if e.code == api.TwirpErrorCode.NOT_FOUND:
                return None  # the room ended while we looked
            raise
        view = room_from_api(room, people.participants, dispatches)
        caller = find_caller(view)
        if caller is None or caller.call_id is None:
            return view
        self._room_of_call[caller.call_id] = room_name
        if self._leases is None or not any(p.kind == "agent" for p in view.people):
            return view
        return replace(view, lease=await self._leases.lease_of(caller.call_id))

    def _observe(self, view: RoomView, now: float) -> Memory:
        memory = self._memory.get(view.name, Memory())
        agents = {
            p.identity
            for p in view.people
            if p.kind == "agent" and p.agent_name == self._policy.agent_name
        }
        if agents:
            memory = replace(memory, seen_agents=memory.seen_agents | agents, agentless_since=None)
        elif memory.agentless_since is None:
            memory = replace(memory, agentless_since=now)
        self._memory[view.name] = memory
        return memory

    def _schedule(self, room_name: str, delay_s: float) -> None:
        """Look at the room again in ``delay_s``, unless the next reconciliation comes first."""
        if delay_s >= self._period_s:
            return
        if old := self._timers.pop(room_name, None):
            old.cancel()
        loop = asyncio.get_running_loop()
        self._timers[room_name] = loop.call_later(
            max(delay_s, 0.05), lambda: self._spawn(self.check(room_name))
        )

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (e := task.exception()) is not None:
            logger.warning("looking at a room failed: %s", e, exc_info=e)

    def _forget(self, room_name: str) -> None:
        for call_id in [c for c, r in self._room_of_call.items() if r == room_name]:
            del self._room_of_call[call_id]
        self._memory.pop(room_name, None)
        self._locks.pop(room_name, None)
        if timer := self._timers.pop(room_name, None):
            timer.cancel()

    async def aclose(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*self._tasks, return_exceptions=True)
