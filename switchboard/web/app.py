"""The console's web application (aiohttp, which the framework already brings, and Jinja2
templates rendered on the server: no JavaScript, no build step).

Read-only: nothing here writes to the database or the recordings folder. Every page but
the login needs a session (``auth``); every response carries headers that keep it out of
frames, caches and other origins' reach (``SECURITY_HEADERS``); bad input is a 400 that
says what is wrong and an unknown call a 404, both as plain pages. Recordings are served
only by the name the call's record gives, from the recordings folder (``recordings.find``),
with HTTP ranges (aiohttp's ``FileResponse``) so the player can seek.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from switchboard.data.db import Database
from switchboard.data.recordings import find
from switchboard.data.records.model import CallRecord, CallSummary, timeline
from switchboard.data.records.query import CallFilter, find_calls, get_call, route_names
from switchboard.numbers import mask_number
from switchboard.web import chart
from switchboard.web.auth import COOKIE, SESSION_S, Sessions
from switchboard.web.params import (
    CALL_ID,
    STATUSES,
    BadParameterError,
    call_filter,
    wants_unmasked,
)

HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; media-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
OPEN_PATHS = ("/login", "/static/console.css")
LIVE_REFRESH_S = 5

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Console:
    db: Database
    sessions: Sessions
    recordings: Path
    allow_unmasked: bool = False
    secure_cookie: bool = False  # set when served over HTTPS (behind a TLS proxy)


CONSOLE = web.AppKey("console", Console)
TEMPLATES = web.AppKey("templates", jinja2.Environment)


def build_app(console: Console) -> web.Application:
    app = web.Application(middlewares=[_headers, _errors, _auth], client_max_size=64 * 1024)
    app[CONSOLE] = console
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["when"] = _when
    env.filters["seconds"] = _seconds
    app[TEMPLATES] = env
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/calls", calls_page)
    app.router.add_get("/live", live_page)
    app.router.add_get("/calls/{call_id}", call_page)
    app.router.add_get("/calls/{call_id}/recording/{part}", recording_file)
    app.router.add_get("/static/console.css", stylesheet)
    return app


# --- middleware ---------------------------------------------------------------------------


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as e:
        e.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadParameterError as e:
        return _page(request, "error.html", status=400, title="Bad request", message=str(e))
    except web.HTTPNotFound:
        message = "There is no such page or call."
        return _page(request, "error.html", status=404, title="Not found", message=message)
    except web.HTTPMethodNotAllowed:
        return _page(request, "error.html", status=405, title="Not allowed", message="")


@web.middleware
async def _auth(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path in OPEN_PATHS:
        return await handler(request)
    sessions = request.app[CONSOLE].sessions
    header = request.headers.get("Authorization", "")
    bearer = header[7:] if header.startswith("Bearer ") else None
    if sessions.valid(request.cookies.get(COOKIE), bearer):
        return await handler(request)
    if request.method == "GET" and "text/html" in request.headers.get("Accept", ""):
        return _redirect("/login")
    challenge = {"WWW-Authenticate": "Bearer"}
    return web.Response(status=401, text="401: log in first\n", headers=challenge)


# --- pages --------------------------------------------------------------------------------


async def home(_request: web.Request) -> web.StreamResponse:
    return _redirect("/calls")


async def login_page(request: web.Request) -> web.StreamResponse:
    return _page(request, "login.html", failed=False)


async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    token = form.get("token")
    console = request.app[CONSOLE]
    address = request.remote or "?"
    session = console.sessions.login(token, address) if isinstance(token, str) else None
    if session is None:
        return _page(request, "login.html", status=401, failed=True)
    response = _redirect("/calls")
    response.set_cookie(
        COOKIE,
        session,
        max_age=int(SESSION_S),
        httponly=True,
        samesite="Strict",
        secure=console.secure_cookie,
        path="/",
    )
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    request.app[CONSOLE].sessions.logout(request.cookies.get(COOKIE))
    response = _redirect("/login")
    response.del_cookie(COOKIE, path="/")
    return response


async def calls_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    where = call_filter(request.query)
    unmasked = _unmasked(request)
    calls = await find_calls(console.db, where)
    return _page(
        request,
        "calls.html",
        calls=[_row(c, unmasked) for c in calls],
        where=where,
        routes=await route_names(console.db),
        statuses=STATUSES,
        query=dict(request.query),
    )


async def live_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    if set(request.query) - {"unmasked"}:
        raise BadParameterError("the live view takes no filter")
    calls = await find_calls(console.db, CallFilter(status="in_progress", limit=200))
    now = time.time()
    return _page(
        request,
        "live.html",
        calls=[_row(c, _unmasked(request)) for c in calls],
        now=now,
        refresh=LIVE_REFRESH_S,
    )


async def call_page(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    record = await _record(request)
    if set(request.query) - {"unmasked"}:
        raise BadParameterError("a call's page takes no parameter but unmasked")
    unmasked = _unmasked(request)
    parts = [
        {
            "part": p,
            "index": i,
            "playable": p.file is not None
            and p.egress_id is None
            and find(console.recordings, p.file) is not None,
        }
        for i, p in enumerate(record.summary.recordings)
    ]
    return _page(
        request,
        "call.html",
        call=_row(record.summary, unmasked),
        record=record,
        events=timeline(record),
        parts=parts,
        latency=Markup(chart.bar_chart(chart.latency_bars(record))),
        strip=Markup(chart.timeline_strip(record)),
    )


async def recording_file(request: web.Request) -> web.StreamResponse:
    console = request.app[CONSOLE]
    record = await _record(request)
    raw = request.match_info["part"]
    parts = record.summary.recordings
    if not raw.isdigit() or int(raw) >= len(parts):
        raise web.HTTPNotFound()
    name = parts[int(raw)].file
    path = find(console.recordings, name) if name else None
    if path is None:
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={"Content-Type": "audio/ogg"})


async def stylesheet(_request: web.Request) -> web.StreamResponse:
    return web.FileResponse(HERE / "static" / "console.css", headers={"Content-Type": "text/css"})


# --- helpers ------------------------------------------------------------------------------


async def _record(request: web.Request) -> CallRecord:
    call_id = request.match_info["call_id"]
    if not CALL_ID.fullmatch(call_id):
        raise BadParameterError("that is not a call ID")
    record = await get_call(request.app[CONSOLE].db, call_id)
    if record is None:
        raise web.HTTPNotFound()
    return record


def _unmasked(request: web.Request) -> bool:
    return wants_unmasked(request.query) and request.app[CONSOLE].allow_unmasked


def _row(call: CallSummary, unmasked: bool) -> dict[str, Any]:
    """A call as the templates show it: numbers masked unless asked and allowed."""
    show = (lambda n: n) if unmasked else mask_number
    return {
        "call": call,
        "caller": show(call.caller_number) or "hidden",
        "called": show(call.called_number) or "",
        "recorded": any(p.file for p in call.recordings),
    }


def _page(request: web.Request, template: str, *, status: int = 200, **values: Any) -> web.Response:
    env = request.app[TEMPLATES]
    html = env.get_template(template).render(**values)
    return web.Response(status=status, text=html, content_type="text/html", charset="utf-8")


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"
