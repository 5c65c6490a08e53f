"""A real headless browser for tests: Debian's Chromium, driven over the Chrome DevTools
protocol with aiohttp's WebSocket client (no browser download, no driver package).

``Browser`` starts Chromium with a throwaway profile and a debugging port it picks
itself (read back from ``DevToolsActivePort``), opens one page, and offers what a test
needs: go to a URL and wait for the load, evaluate JavaScript, take a screenshot. It is
stopped, by its own pid, when the ``async with`` ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

START_DEADLINE_S = 60.0
STEP_DEADLINE_S = 30.0


class BrowserError(RuntimeError):
    pass


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise BrowserError("no Chromium: `apt-get install chromium` (lab/setup.sh installs it)")


class Browser:
    def __init__(self, *, width: int = 1200, height: int = 1400) -> None:
        self._size = (width, height)
        self._profile = Path(tempfile.mkdtemp(prefix="sb-chromium-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Browser:
        width, height = self._size
        argv = [
            chromium(),
            "--headless=new",
            "--no-sandbox",  # tests run as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--autoplay-policy=no-user-gesture-required",
            f"--window-size={width},{height}",
            f"--user-data-dir={self._profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ]
        log = (self._profile / "chromium.log").open("wb")
        self._proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            await self._connect()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _connect(self) -> None:
        port_file = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_DEADLINE_S
        while not (port_file.exists() and port_file.read_text().strip()):
            if self._proc is not None and self._proc.poll() is not None:
                raise BrowserError(f"chromium exited: {self._log_tail()}")
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium did not start: {self._log_tail()}")
            await asyncio.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        await self.send("Page.enable")
        await self.send("Runtime.enable")

    async def _read(self) -> None:
        assert self._ws is not None
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if "id" in data and (fut := self._pending.pop(data["id"], None)) is not None:
                if not fut.done():
                    fut.set_result(data)
            elif "method" in data:
                self._events.put_nowait(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        n = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[n] = fut
        await self._ws.send_str(json.dumps({"id": n, "method": method, "params": params}))
        reply = await asyncio.wait_for(fut, STEP_DEADLINE_S)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def _wait_event(self, method: str) -> dict[str, Any]:
        async def wait() -> dict[str, Any]:
            while True:
                event = await self._events.get()
                if event["method"] == method:
                    return event

        return await asyncio.wait_for(wait(), STEP_DEADLINE_S)

    def _drain_events(self) -> None:
        while not self._events.empty():
            self._events.get_nowait()

    async def goto(self, url: str) -> None:
        """Open ``url`` and wait until its page (after any redirect) has loaded."""
        self._drain_events()
        await self.send("Page.navigate", url=url)
        await self._wait_event("Page.loadEventFired")

    async def submit(self, form_selector: str) -> None:
        """Submit a form as a click would, and wait for the page it leads to."""
        self._drain_events()
        await self.eval(f"document.querySelector({json.dumps(form_selector)}).requestSubmit()")
        await self._wait_event("Page.loadEventFired")

    async def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        value = result["result"]
        # Infinity, NaN, -0 have no JSON form: they come as their names.
        return (
            value["unserializableValue"] if "unserializableValue" in value else value.get("value")
        )

    async def screenshot(self, path: Path) -> None:
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def _log_tail(self) -> str:
        log = self._profile / "chromium.log"
        return log.read_text(errors="replace")[-1500:] if log.exists() else ""

    async def __aexit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._proc is not None and self._proc.poll() is None:
            # Its own process group (start_new_session): Chromium's helpers go with it.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=10)
        shutil.rmtree(self._profile, ignore_errors=True)
