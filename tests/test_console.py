"""The web console over HTTP (aiohttp's test client, a real SQLite database and a real
recording file): login, the list and its filters, a call's page, the recording with
ranges, and what it refuses: no session, bad input, unknown calls, paths outside the
recordings folder. The browser test is tests/test_console_browser.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from switchboard.data.db import open_database
from switchboard.data.recordings import create_file
from switchboard.data.records.model import Recording, Turn
from switchboard.data.records.recorder import CallRecorder
from switchboard.web.app import SECURITY_HEADERS, Console, build_app
from switchboard.web.auth import FAILURES_ALLOWED, Sessions, token_problem

pytestmark = pytest.mark.unit

TOKEN = "correct horse battery staple"
NOW = 1_790_000_000.0
AUDIO = bytes(range(256)) * 40  # stands for the Ogg file: served as it is


@pytest_asyncio.fixture(loop_scope="function")
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    db = await open_database(f"sqlite:///{tmp_path / 'switchboard.db'}")
    folder = tmp_path / "recordings"
    path = create_file(folder, "SCL_rec", NOW)
    path.write_bytes(AUDIO)
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=None, clock=lambda: NOW)
    await recorder.start(
        call_id="SCL_rec",
        room="call-_+442071234567_x",
        route="support",
        caller_number="+442071234567",
        called_number="+15105550100",
    )
    recorder.add_recording(Recording(path.name, NOW, consent=True))
    recorder.add_turn(Turn("assistant", "Hello <b>there</b>", NOW + 1))
    recorder.add_turn(Turn("user", "Where is my order?", NOW + 3))
    await recorder.finish("CLIENT_INITIATED")
    (tmp_path / "secret.txt").write_text("not for the web")
    console = Console(db=db, sessions=Sessions(TOKEN), recordings=folder)
    async with TestClient(TestServer(build_app(console))) as c:
        yield c
    await db.close()


async def login(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.post("/login", data={"token": TOKEN}, allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"] == "/calls"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


async def test_nothing_without_a_session(client: TestClient) -> None:  # type: ignore[type-arg]
    page = await client.get("/calls", headers={"Accept": "text/html"}, allow_redirects=False)
    assert page.status == 303 and page.headers["Location"] == "/login"
    for path in ("/calls", "/live", "/calls/SCL_rec", "/calls/SCL_rec/recording/0"):
        resp = await client.get(path, allow_redirects=False)
        assert resp.status == 401, path
        assert "Hello" not in await resp.text()
    wrong = await client.post("/login", data={"token": "guess"}, allow_redirects=False)
    assert wrong.status == 401 and "Set-Cookie" not in wrong.headers
    assert (await client.get("/login")).status == 200


async def test_a_bearer_token_works_for_scripts(client: TestClient) -> None:  # type: ignore[type-arg]
    resp = await client.get("/calls", headers={"Authorization": f"Bearer {TOKEN}"})
    assert resp.status == 200
    bad = await client.get("/calls", headers={"Authorization": "Bearer nope"})
    assert bad.status == 401


async def test_the_list_and_a_call(client: TestClient) -> None:  # type: ignore[type-arg]
    await login(client)
    listing = await client.get("/calls")
    html = await listing.text()
    assert listing.status == 200 and "/calls/SCL_rec" in html
    assert "+4420••••4567" in html and "2071234567" not in html
    assert "recorded" in html
    for key, value in SECURITY_HEADERS.items():
        assert listing.headers[key] == value
    assert "SCL_rec" not in await (await client.get("/calls?route=sales")).text()
    assert "SCL_rec" in await (await client.get("/calls?number=4567&status=complete")).text()
    page = await (await client.get("/calls/SCL_rec")).text()
    assert "Where is my order?" in page
    assert "Hello &lt;b&gt;there&lt;/b&gt;" in page  # escaped, never markup
    assert '<audio controls preload="metadata" src="/calls/SCL_rec/recording/0">' in page
    assert "CLIENT_INITIATED" in page and "after the consent line" in page
    assert "<svg" in page
    live = await (await client.get("/live")).text()
    assert "No calls." in live and 'http-equiv="refresh"' in live


async def test_the_recording_is_served_with_ranges(client: TestClient) -> None:  # type: ignore[type-arg]
    await login(client)
    whole = await client.get("/calls/SCL_rec/recording/0")
    assert whole.status == 200 and whole.headers["Content-Type"] == "audio/ogg"
    assert await whole.read() == AUDIO
    part = await client.get("/calls/SCL_rec/recording/0", headers={"Range": "bytes=100-199"})
    assert part.status == 206 and await part.read() == AUDIO[100:200]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/calls/SCL_nope", 404),
        ("/calls/SCL_rec/recording/1", 404),
        ("/calls/SCL_rec/recording/-1", 404),
        ("/calls/SCL_rec/recording/..%2F..%2Fsecret.txt", 404),
        ("/calls/..%2Fsecret.txt", 400),
        ("/calls/%3Cscript%3E", 400),
        ("/calls/SCL_rec/recording/0/../../../secret.txt", 404),
        ("/static/../secret.txt", 404),
        ("/calls?route=%3Cscript%3Ealert(1)%3C/script%3E", 400),
        ("/calls?number=%27%20OR%201=1--", 400),
        ("/calls?date=2026-13-45", 400),
        ("/calls?status=everything", 400),
        ("/calls?limit=100000", 400),
        ("/calls?reason=" + "A" * 500, 400),
        ("/calls?evil=1", 400),
        ("/calls?unmasked=yes", 400),
        ("/calls/SCL_rec?x=1", 400),
        ("/nowhere", 404),
    ],
)
async def test_bad_input_is_a_clean_refusal(
    client: TestClient,  # type: ignore[type-arg]
    path: str,
    status: int,
) -> None:
    await login(client)
    resp = await client.get(path, allow_redirects=False)
    text = await resp.text()
    assert resp.status == status, (path, text[:200])
    assert "not for the web" not in text and "Traceback" not in text
    assert "<script>" not in text
    assert resp.headers["X-Frame-Options"] == "DENY"


async def test_unmasked_needs_the_setting(tmp_path: Path) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'db'}")
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=None, store_full_numbers=True)
    await recorder.start(call_id="SCL_full", caller_number="+442071234567")
    await recorder.finish("CLIENT_INITIATED")
    for allowed, shown in ((False, "+4420••••4567"), (True, "+442071234567")):
        console = Console(
            db=db, sessions=Sessions(TOKEN), recordings=tmp_path, allow_unmasked=allowed
        )
        async with TestClient(TestServer(build_app(console))) as c:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            assert "+4420••••4567" in await (await c.get("/calls", headers=auth)).text()
            html = await (await c.get("/calls?unmasked=1", headers=auth)).text()
            assert shown in html
    await db.close()


def test_logins_are_slowed_down_and_tokens_checked() -> None:
    clock = [0.0]
    sessions = Sessions(TOKEN, clock=lambda: clock[0])
    for _ in range(FAILURES_ALLOWED):
        assert sessions.login("wrong", "10.0.0.9") is None
    assert sessions.login(TOKEN, "10.0.0.9") is None  # locked out for a while
    assert sessions.login(TOKEN, "10.0.0.8") is not None  # another address is not
    clock[0] += 301
    session = sessions.login(TOKEN, "10.0.0.9")
    assert session is not None and sessions.valid(session)
    clock[0] += 13 * 3600
    assert not sessions.valid(session)  # expired
    assert token_problem("") and token_problem("short") and token_problem(TOKEN) is None
