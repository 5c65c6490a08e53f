"""`switchboard directory` and `switchboard calls` against SQLite and PostgreSQL: exit codes,
masked numbers, the calls table, one call's timeline, JSON output, database errors."""

from __future__ import annotations

import asyncio
import json
from itertools import count
from pathlib import Path

import pytest

from switchboard.cli.main import main
from switchboard.data.db import open_database
from switchboard.data.records.model import StatusChange, ToolCall, Turn
from switchboard.data.records.recorder import CallRecorder

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

CSV = """number,name,tier,language,crm_id
+44 20 7123 4567,Alice Example,gold,en-GB,42
not-a-number,Mallory,,,
"+1 415 555 2671","Bob \x1b[31mRed\x1b[0m",silver,,
"""


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def env(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DATABASE_URL", db_url)
    return db_url


def test_directory_import_then_show(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "contacts.csv"
    path.write_text(CSV, encoding="utf-8")
    code, out, _ = run(capsys, "directory", "import", str(path))
    assert code == 1
    assert "refused" in out and "line 3: number:" in out and "--on-error skip" in out

    code, out, _ = run(capsys, "directory", "import", str(path), "--json")
    report = json.loads(out)
    assert code == 1 and report["refused"] is True and report["problems"][0]["line"] == 3

    code, out, _ = run(capsys, "directory", "import", str(path), "--on-error", "skip")
    assert code == 0
    assert "3 rows read, 1 written (1 new, 0 updated)" in out
    assert "line 3: number:" in out and "line 4: name: contains control characters" in out

    code, out, _ = run(capsys, "directory", "show", "+44 20 7123 4567")
    assert code == 0
    assert "Alice Example" in out and "+4420••••4567" in out and "+442071234567" not in out
    assert 'extra.crm_id  "42"' in out
    code, out, _ = run(capsys, "directory", "show", "tel:+442071234567", "--unmasked")
    assert "+442071234567" in out

    code, out, _ = run(capsys, "directory", "show", "+14155552671")
    assert code == 1 and "unknown" in out
    code, out, _ = run(capsys, "directory", "show", "12345abc")
    assert code == 2 and out.startswith("'12345abc' is not a phone number: ")  # as typed
    code, out, _ = run(capsys, "directory", "show", "notanumber", "--json")
    assert code == 2 and json.loads(out)["status"] == "invalid"
    code, out, _ = run(capsys, "directory", "show", "+44 20 7123 4567", "--json")
    found = json.loads(out)
    assert (found["status"], found["number"]) == ("found", "+4420••••4567")
    assert found["entry"]["name"] == "Alice Example"
    assert found["entry"]["extra"] == {"crm_id": "42"}
    code, out, _ = run(capsys, "directory", "show", "2071234567", "--region", "GB")
    assert code == 0 and "Alice Example" in out


def test_directory_import_unreadable_file(
    env: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "directory", "import", str(tmp_path / "missing.csv"))
    assert code == 2 and "cannot read" in err


async def _record(url: str) -> None:
    db = await open_database(url)
    try:
        ticks = (1_700_000_000.0 + i for i in count())
        recorder = CallRecorder(db, heartbeat_s=None, clock=lambda: next(ticks))
        await recorder.start(
            call_id="SCL_cli", route="support", caller_number="+442071234567", room="r1"
        )
        recorder.add_status(StatusChange("active", recorder.now()))
        recorder.add_turn(Turn("assistant", "Hello!", recorder.now()))
        escape = "Order 42 please \x1b[2J"  # a terminal escape
        recorder.add_turn(Turn("user", escape, recorder.now()))
        recorder.add_tool_call(
            ToolCall("lookup_order", {"order_id": "42"}, {"status": "shipped"}, recorder.now())
        )
        refused = ToolCall("add_participant", {"policy": "lab"}, "refused: PREMIUM", recorder.now())
        recorder.add_tool_call(refused)
        recorder.add_status(StatusChange("dialled-1: left (USER_REJECTED)", recorder.now()))
        recorder.add_status(StatusChange("hangup", recorder.now()))
        usage = {
            "models": [
                {
                    "type": "llm_usage",
                    "provider": "openai",
                    "model": "gpt-4.1-mini",
                    "input_tokens": 1200,
                    "output_tokens": 80,
                },
                # as records written before usage was stored as objects hold it
                "TTSModelUsage(type='tts_usage', provider='espeak-ng', model='en-us', "
                "characters_count=93, audio_duration=4.25)",
            ]
        }
        await recorder.finish("CLIENT_INITIATED", usage=usage)
        left = CallRecorder(db, heartbeat_s=None, clock=lambda: 1_600_000_000.0)
        await left.start(call_id="SCL_left", caller_number="+14155552671")
    finally:
        await db.close()


def test_calls_table_and_details(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    asyncio.run(_record(env))
    code, out, _ = run(capsys, "calls")
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split()[:3] == ["STARTED", "CALL", "ID"]
    assert "SCL_cli" in first and "complete" in first and "+4420••••4567" in first
    assert first.rstrip().endswith("caller hung up")
    assert "9.0 s" in first
    assert "SCL_left" in second and "incomplete" in second

    code, out, _ = run(capsys, "calls", "--limit", "1", "--json")
    [summary] = json.loads(out)
    assert (summary["call_id"], summary["status"], summary["turns"]) == ("SCL_cli", "complete", 2)
    assert summary["caller_number"] == "+4420••••4567"
    assert summary["started_at"].startswith("2023-11-14T22:13:20")

    code, out, _ = run(capsys, "calls", "show", "SCL_cli")
    assert code == 0
    timeline = out[out.index("timeline") : out.index("transcript")]
    order = [
        "status  active",
        "agent   Hello!",
        "caller  Order 42",
        "tool    lookup_order",
        "hangup",
    ]
    positions = [timeline.index(item) for item in order]
    assert positions == sorted(positions)
    assert '{"order_id": "42"}) -> {"status": "shipped"}' in timeline
    assert "agent: Hello!" in out and "caller: Order 42 please \\x1b[2J" in out
    assert "\x1b" not in out
    assert "ended" in out and "(caller hung up)" in out and "CLIENT_INITIATED" not in out
    assert 'add_participant({"policy": "lab"}) -> refused: a premium-rate number' in out
    assert "dialled-1: left (call rejected)" in out and "USER_REJECTED" not in out
    assert "llm openai/gpt-4.1-mini: input tokens 1200, output tokens 80" in out
    assert "tts espeak-ng/en-us: characters count 93, audio duration 4.25 s" in out
    assert "ModelUsage(" not in out

    code, out, _ = run(capsys, "calls", "show", "SCL_cli", "--json")
    record = json.loads(out)
    kinds = [e["kind"] for e in record["timeline"]]
    assert kinds == ["status", "turn", "turn", "tool", "tool", "status", "status"]
    assert record["disconnect_reason"] == "CLIENT_INITIATED"  # the code, for scripts
    assert record["ended_because"] == "caller hung up"
    assert record["usage"]["models"][1] == {
        "type": "tts_usage",
        "provider": "espeak-ng",
        "model": "en-us",
        "characters_count": 93,
        "audio_duration": 4.25,
    }

    code, _, err = run(capsys, "calls", "show", "nope")
    assert code == 1 and "no call 'nope'" in err


def test_empty_listing(env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "calls") == (0, "no calls recorded yet\n", "")


def test_bad_database_url(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://root:secret@127.0.0.1/db")
    code, _, err = run(capsys, "calls")
    assert code == 2 and "unsupported database" in err and "secret" not in err


def test_database_down(
    down_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if down_url.startswith("sqlite"):
        down_url = "sqlite:////proc/no-such-dir/switchboard.db"  # not even creatable
    monkeypatch.setenv("DATABASE_URL", down_url)
    code, _, err = run(capsys, "calls")
    assert code == 1 and "cannot open the database" in err


async def _old_record(url: str) -> None:
    """A record written before transcripts and tool arguments were masked."""
    db = await open_database(url)
    try:
        recorder = CallRecorder(db, heartbeat_s=None)
        await recorder.start(call_id="SCL_old", caller_number="+442071234567", room="r2")
        recorder.add_turn(Turn("user", "Call +1 510 555 0177 please", recorder.now()))
        recorder.add_tool_call(
            ToolCall("add_participant", {"destination": "+15105550177"}, "answered", 1.0)
        )
        await recorder.finish("CLIENT_INITIATED", usage=None)
    finally:
        await db.close()


def test_calls_show_masks_numbers_in_old_records(
    env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    asyncio.run(_old_record(env))
    for argv in (("calls", "show", "SCL_old"), ("calls", "show", "SCL_old", "--json")):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "5550177" not in out and "+1510••••0177" in out
    code, out, _ = run(capsys, "calls", "show", "SCL_old", "--unmasked")
    assert "+15105550177" in out
