"""`switchboard guardian`: wire the receiver, the loop and the dispatcher; run until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

from aiohttp import web
from livekit import api
from livekit.protocol.webhook import WebhookEvent

from switchboard.data.db import create_database
from switchboard.guardian.config import GuardianConfig
from switchboard.guardian.dispatcher import Dispatcher
from switchboard.guardian.events import GuardianEvents
from switchboard.guardian.liveness import LeaseWatch
from switchboard.guardian.reconcile import Guardian
from switchboard.guardian.room import AGENT_NAME_ATTRIBUTE
from switchboard.guardian.webhook import WEBHOOK_PATH, webhook_app

logger = logging.getLogger("switchboard.guardian")


def route_event(guardian: Guardian, agent_name: str) -> Callable[[WebhookEvent], None]:
    """What a (verified) webhook changes: what we remember, and which room to look at now."""

    def on_event(event: WebhookEvent) -> None:
        room = event.room.name
        if not room:
            return
        who = event.participant
        ours = (
            who.kind == api.ParticipantInfo.Kind.AGENT
            and who.attributes.get(AGENT_NAME_ATTRIBUTE) == agent_name
        )
        if event.event == "room_finished":
            guardian.room_finished(room)
        elif event.event == "participant_joined" and ours:
            guardian.saw_agent_join(room, who.identity)
        elif event.event in ("participant_left", "participant_connection_aborted") and ours:
            guardian.saw_agent_leave(room, who.identity, float(event.created_at))
        elif event.event in ("room_started", "participant_joined", "participant_left"):
            guardian.wake(room)

    return on_event


async def run_guardian(config: GuardianConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    events = GuardianEvents(config.events_file)
    async with api.LiveKitAPI(config.livekit_url, config.api_key, config.api_secret) as lk:
        policy = config.policy
        watch = None
        if policy.agent_silence_s > 0:
            # No I/O here: a database that is down only delays the noticing of dead agents.
            watch = LeaseWatch(
                create_database(config.database_url),
                policy.agent_silence_s,
                lambda call_id: guardian.call_silent(call_id),
            )
        guardian = Guardian(
            lk, policy, Dispatcher(lk, policy, events), period_s=config.period_s, leases=watch
        )
        receiver = api.WebhookReceiver(api.TokenVerifier(config.api_key, config.api_secret))
        runner = web.AppRunner(
            webhook_app(receiver, route_event(guardian, config.policy.agent_name))
        )
        await runner.setup()
        site = web.TCPSite(runner, config.bind, config.port)
        await site.start()
        logger.info(
            "guardian for agent %r listening on http://%s:%d%s; reconciling every %g s",
            config.policy.agent_name,
            config.bind,
            config.port,
            WEBHOOK_PATH,
            config.period_s,
        )
        if watch is not None:
            logger.info(
                "an agent whose call lease is silent for %g s is replaced (database %s)",
                policy.agent_silence_s,
                watch.display_url,
            )
        tasks = [asyncio.create_task(guardian.run())]
        if watch is not None:
            tasks.append(asyncio.create_task(watch.run()))
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks)
            await guardian.aclose()
            if watch is not None:
                await watch.aclose()
            await runner.cleanup()
