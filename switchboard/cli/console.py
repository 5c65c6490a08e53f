"""`switchboard web`: serve the read-only call console.

It reads the call records (``DATABASE_URL``) and plays the recordings
(``SWITCHBOARD_RECORDINGS_DIR``). It refuses to start without ``SWITCHBOARD_WEB_TOKEN``
(16 characters or more), and listens on 127.0.0.1 unless told otherwise: put a TLS proxy
in front before exposing it (then pass ``--secure-cookie``). Exit 2 for a setting to fix,
1 when the database cannot be opened.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TypeAlias

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from switchboard.cli.errors import config_failed
from switchboard.config.errors import ConfigError
from switchboard.config.settings import load_settings, recordings_folder
from switchboard.data.db import DatabaseError, open_database
from switchboard.web.app import Console, build_app
from switchboard.web.auth import Sessions, token_problem

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def add_parser(subparsers: Subparsers) -> None:
    p = subparsers.add_parser(
        "web",
        help="serve the read-only call console (calls, transcripts, recordings)",
        description=(
            "Serve the call console. Needs SWITCHBOARD_WEB_TOKEN; listens on "
            "SWITCHBOARD_WEB_HOST:SWITCHBOARD_WEB_PORT (127.0.0.1:8090)."
        ),
    )
    p.add_argument("--host", help="listen address (default: SWITCHBOARD_WEB_HOST)")
    p.add_argument("--port", type=int, help="port (default: SWITCHBOARD_WEB_PORT)")
    p.add_argument(
        "--secure-cookie",
        action="store_true",
        help="mark the session cookie Secure (the console is served over HTTPS)",
    )
    p.set_defaults(func=run_web)


def run_web(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(os.environ, need_server=False)
    except ConfigError as e:
        return config_failed(e)
    web_settings = settings.web
    if problem := token_problem(web_settings.token):
        print(f"error: {problem}; set it in .env.local (see .env.example)", file=sys.stderr)
        return 2
    host = args.host or web_settings.host
    port = args.port if args.port is not None else web_settings.port

    async def serve() -> int:
        try:
            db = await open_database(settings.data.url)
        except (OSError, SQLAlchemyError, DatabaseError) as e:
            print(f"error: cannot open the database: {type(e).__name__}", file=sys.stderr)
            return 1
        console = Console(
            db=db,
            sessions=Sessions(web_settings.token),
            recordings=recordings_folder(settings.data, settings.recording),
            allow_unmasked=web_settings.allow_unmasked,
            secure_cookie=args.secure_cookie,
        )
        runner = web.AppRunner(build_app(console), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            print(f"switchboard console on http://{host}:{port}/", flush=True)
            await asyncio.Event().wait()  # until interrupted
        finally:
            await runner.cleanup()
            await db.close()
        return 0

    try:
        return asyncio.run(serve())
    except KeyboardInterrupt:
        return 0
