"""The console in a real browser (Debian's headless Chromium) on a real recorded call:
the browser is sent to the login page, logs in, finds the call in the list, opens it, and
its page has the transcript and a player whose audio the browser loads and decodes.
Requests without a session are refused. The screenshot of the call page is saved in the
lab's state folder (docs/console-call.png is one).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from lab.audio import load_pcmu, prompt_pcmu, silence_pcmu
from lab.testing.browser import Browser
from lab.testing.calls import call_ai, caller_event
from lab.testing.fake_openai import say
from lab.testing.handles import AiLab
from lab.testing.records import lab_database, wait_record

pytestmark = pytest.mark.lab

TOKEN = "lab-console-password-0123456789"
GREETING = "Hello, this is the recorded line. How can I help?"
ASKED = "I would like to know where my order is."
REPLY = "Your order shipped this morning; it arrives tomorrow."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def console(ai_lab: AiLab, state: Path) -> Iterator[str]:
    """`switchboard web` over the lab's records and recordings; its URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": ai_lab.env["LAB_DATABASE_URL"],
        "SWITCHBOARD_RECORDINGS_DIR": str(state / "recordings"),
        "SWITCHBOARD_WEB_TOKEN": TOKEN,
        "SWITCHBOARD_WEB_PORT": str(port),
    }
    log = (state.parent / "logs" / "console.log").open("wb")
    argv = [sys.executable, "-m", "switchboard.cli.main", "web"]
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert proc.poll() is None, "switchboard web exited; see logs/console.log"
            assert time.monotonic() < deadline, "switchboard web did not listen within 30 s"
            time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_a_recorded_call_is_reviewed_in_the_browser(ai_lab: AiLab) -> None:
    ai_lab.fake.script("record", [say(GREETING), say(REPLY)])
    ai_lab.fake.hear([ASKED])  # what the speech-to-text double makes of the caller's words
    audio = silence_pcmu(9.0) + load_pcmu(prompt_pcmu(ASKED))
    result = await call_ai(ai_lab, "record", send_audio=audio, hangup=24.0, timeout=60)
    assert result.answered, result.sipp_log_tail
    call_id = caller_event(ai_lab.lab, result)["caller"]["call_id"]
    async with lab_database(ai_lab.lab) as db:
        record = await wait_record(db, call_id, "complete", timeout=30)
    assert record.summary.recordings and record.summary.recordings[0].file

    state = Path(ai_lab.env["LAB_DATABASE_URL"].removeprefix("sqlite:///")).parent
    with console(ai_lab, state) as url:
        # Without a session: nothing but the login page, and no audio.
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{url}/calls/{call_id}/recording/0") as resp:
                assert resp.status == 401
            async with http.get(f"{url}/calls/{call_id}") as resp:
                assert resp.status == 401 and GREETING not in await resp.text()

        async with Browser() as browser:
            await browser.goto(f"{url}/calls/{call_id}")
            assert await browser.eval("location.pathname") == "/login"
            await browser.eval(f"document.querySelector('#token').value = {json.dumps(TOKEN)}")
            await browser.submit("#login")
            assert await browser.eval("location.pathname") == "/calls"
            link = f"a[href='/calls/{call_id}']"
            assert await browser.eval(f"!!document.querySelector({json.dumps(link)})")
            href = await browser.eval(f"document.querySelector({json.dumps(link)}).href")
            await browser.goto(href)
            title = await browser.eval("document.querySelector('h1').textContent")
            assert title.endswith(call_id)
            transcript = await browser.eval("document.querySelector('#transcript').innerText")
            assert GREETING in transcript and ASKED in transcript and REPLY in transcript
            reason = await browser.eval("document.querySelector('#reason').textContent")
            assert reason == "CLIENT_INITIATED"
            # The player loads the recording (through the session cookie) and decodes it.
            duration = await browser.eval(
                """new Promise(done => {
                    const a = document.querySelector('#recording audio');
                    if (!a) return done(-2);
                    a.addEventListener('error', () => done(-1));
                    if (a.readyState >= 1) return done(a.duration);
                    a.addEventListener('loadedmetadata', () => done(a.duration));
                    a.load();
                })"""
            )
            assert duration == "Infinity" or (isinstance(duration, int | float) and duration > 5)
            await browser.screenshot(state / "console-call.png")
            await browser.submit("form.logout")
            assert await browser.eval("location.pathname") == "/login"
            await browser.goto(f"{url}/calls/{call_id}")
            assert await browser.eval("location.pathname") == "/login"
