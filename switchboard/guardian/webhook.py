"""The webhook receiver: livekit-server tells us when participants come and go.

Webhooks only make the guardian quicker; reconciliation alone is enough to be correct.
So a request whose signature does not verify (a JWT signed with our API secret, carrying
the SHA-256 of the body) is refused with 401 and changes nothing, not even what the
guardian remembers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web
from livekit import api
from livekit.protocol.webhook import WebhookEvent

logger = logging.getLogger("switchboard.guardian")

WEBHOOK_PATH = "/webhook"
# livekit-server's events are a few kilobytes; anything much larger is not one of them.
MAX_BODY = 256 * 1024


def webhook_app(
    receiver: api.WebhookReceiver, on_event: Callable[[WebhookEvent], None]
) -> web.Application:
    async def webhook(request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if not token:
            return _refused(request, "no Authorization header")
        try:
            body = (await request.read()).decode("utf-8")
            event = receiver.receive(body, token)
        except web.HTTPRequestEntityTooLarge:
            raise
        except Exception as e:  # the verifier raises plain Exception, and jwt's own errors
            return _refused(request, type(e).__name__)
        on_event(event)
        return web.Response(text="ok")

    async def health(_request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(WEBHOOK_PATH, webhook)
    app.router.add_get("/healthz", health)
    return app


def _refused(request: web.Request, why: str) -> web.Response:
    # Not the body, not the token: they are an attacker's words.
    logger.warning("refused an unsigned or forged webhook from %s (%s)", request.remote, why)
    return web.Response(status=401, text="invalid webhook signature")
