"""Call recordings without a call: the folder's rules (permissions, names, a full disk, an
unwritable folder, retention), the record's link to the file on both databases, the
route fields, and the caller's side muted under the recorder."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from livekit import api, rtc
from livekit.agents import io

from lab.testing.recordings import dominant_hz, loud_seconds, read_stereo
from switchboard.call.recording import Muting, start_egress
from switchboard.cli.main import main
from switchboard.config.errors import ConfigError
from switchboard.config.routes import parse_routes
from switchboard.config.settings import load_settings, recordings_folder
from switchboard.data.db import Database, open_database
from switchboard.data.recordings import (
    DAY_S,
    RecordingUnavailableError,
    create_file,
    find,
    prune,
    safe_id,
)
from switchboard.data.records.model import CallRecord, CallSummary, Recording, Turn
from switchboard.data.records.query import CallFilter, find_calls, get_call
from switchboard.data.records.recorder import CallRecorder
from switchboard.web.chart import bar_chart, latency_bars, timeline_strip

pytestmark = pytest.mark.unit
pytest_plugins = ["lab.testing.postgres"]

NOW = 1_790_000_000.0


# --- the folder ---------------------------------------------------------------------------


def test_files_are_private_and_named_by_time_and_call(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    path = create_file(folder, "SCL_abc123", NOW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert path.name == time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(NOW)) + "-SCL_abc123.ogg"
    again = create_file(folder, "SCL_abc123", NOW)  # a resumed call, same second
    assert again != path and again.name.endswith("-SCL_abc123-2.ogg")
    assert find(folder, path.name) == path and find(folder, again.name) == again


def test_an_existing_folder_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "rec"
    folder.mkdir(mode=0o755)
    create_file(folder, "SCL_1", NOW)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "call_id", ["../../etc/passwd", "SCL_1/../x", "+442071234567 call", "", "a" * 300]
)
def test_call_ids_become_safe_names(tmp_path: Path, call_id: str) -> None:
    path = create_file(tmp_path, call_id, NOW)
    assert path.parent == tmp_path
    assert "/" not in safe_id(call_id) and "." not in safe_id(call_id)
    assert find(tmp_path, path.name) == path


def test_a_full_disk_is_a_reason_not_an_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingUnavailableError, match="disk full"):
        create_file(tmp_path, "SCL_1", NOW, min_free=2**62)
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_folder_is_a_reason_not_an_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(RecordingUnavailableError, match="recordings folder unusable"):
        create_file(blocker / "recordings", "SCL_1", NOW)


@pytest.mark.parametrize(
    "name",
    [
        "../secret.ogg",
        "..",
        "/etc/passwd",
        "20261129T140836Z-SCL_1.ogg/../../x",
        "20261129T140836Z-SCL_1.wav",
        "20261129T140836Z-SCL 1.ogg",
        "20261129T140836Z-SCL_missing.ogg",
    ],
)
def test_only_our_files_in_the_folder_are_found(tmp_path: Path, name: str) -> None:
    (tmp_path / "secret.ogg").write_bytes(b"x")
    assert find(tmp_path / "rec", name) is None


def test_a_symlink_is_never_served(tmp_path: Path) -> None:
    (tmp_path / "outside").write_bytes(b"secret")
    link = tmp_path / "20261129T140836Z-SCL_1.ogg"
    link.symlink_to(tmp_path / "outside")
    assert find(tmp_path, link.name) is None


def test_prune_deletes_only_expired_recordings(tmp_path: Path) -> None:
    old = create_file(tmp_path, "SCL_old", NOW - 40 * DAY_S)
    new = create_file(tmp_path, "SCL_new", NOW - DAY_S)
    other = tmp_path / "notes.txt"  # not ours: never touched, whatever its age
    other.write_text("keep")
    for path, age in ((old, 40), (new, 1), (other, 400)):
        os.utime(path, (NOW - age * DAY_S, NOW - age * DAY_S))
    planned = prune(tmp_path, 30, NOW, dry_run=True)
    assert planned.deleted == (old.name,) and old.exists()
    done = prune(tmp_path, 30, NOW)
    assert done.deleted == (old.name,) and done.kept == 1 and not done.failed
    assert not old.exists() and new.exists() and other.exists()
    assert prune(tmp_path / "missing", 30, NOW).deleted == ()


def test_the_prune_command_uses_the_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    old = create_file(tmp_path, "SCL_old", NOW)
    os.utime(old, (time.time() - 10 * DAY_S,) * 2)
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_DIR", str(tmp_path))
    monkeypatch.setenv("SWITCHBOARD_RECORDINGS_RETENTION_DAYS", "30")
    assert main(["recordings", "prune"]) == 0
    assert old.exists() and "0 deleted, 1 kept" in capsys.readouterr().out
    assert main(["recordings", "prune", "--days", "7"]) == 0
    assert not old.exists() and f"deleted {old.name}" in capsys.readouterr().out


def test_recording_settings() -> None:
    s = load_settings({"SWITCHBOARD_STATE_DIR": "/var/lib/sb"}, need_server=False)
    assert recordings_folder(s.data, s.recording) == Path("/var/lib/sb/recordings")
    assert s.recording.retention_days == 30 and s.recording.mode == "agent"
    assert s.web.host == "127.0.0.1" and not s.web.allow_unmasked
    with pytest.raises(ConfigError) as e:
        load_settings(
            {"SWITCHBOARD_RECORDINGS_RETENTION_DAYS": "0", "SWITCHBOARD_WEB_ALLOW_UNMASKED": "si"},
            need_server=False,
        )
    assert "SWITCHBOARD_RECORDINGS_RETENTION_DAYS" in str(e.value)
    assert "SWITCHBOARD_WEB_ALLOW_UNMASKED" in str(e.value)


# --- routes -------------------------------------------------------------------------------


def test_routes_record_and_say_consent_first() -> None:
    table = parse_routes(
        '[[route]]\nname = "default"\nrecord = true\nrecord_consent = "This call is recorded."\n',
        source="routes.toml",
        known_prompts={"default"},
    )
    route = table.routes[0]
    assert route.record and route.record_consent == "This call is recorded."
    plain = parse_routes('[[route]]\nname = "default"\n', source="r", known_prompts={"default"})
    assert not plain.routes[0].record  # off by default


def test_a_consent_line_without_recording_is_refused() -> None:
    with pytest.raises(ConfigError, match="record_consent") as e:
        parse_routes(
            '[[route]]\nname = "default"\nrecord_consent = "Recorded."\n',
            source="routes.toml",
            known_prompts={"default"},
        )
    assert "add record = true" in str(e.value)


# --- the record's link --------------------------------------------------------------------


async def test_the_record_keeps_each_part_and_why_one_is_missing(db: Database) -> None:
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=None, clock=lambda: NOW)
    await recorder.start(call_id="SCL_rec", route="support", caller_number="+442071234567")
    recorder.add_recording(Recording("20261129T140836Z-SCL_rec.ogg", NOW, consent=True))
    recorder.end_recording(NOW + 30)
    recorder.add_recording(Recording(None, NOW + 40, error="disk full: 3 MiB free"))
    await recorder.finish("CLIENT_INITIATED")
    record = await get_call(db, "SCL_rec")
    assert record is not None
    first, second = record.summary.recordings
    assert first == Recording("20261129T140836Z-SCL_rec.ogg", NOW, NOW + 30, None, True)
    assert second.file is None and second.error == "disk full: 3 MiB free"


async def test_find_calls_filters(db: Database) -> None:
    async def call(call_id: str, route: str, number: str, at: float, reason: str) -> None:
        r = CallRecorder(db, heartbeat_s=None, save_after_s=None, clock=lambda: at)
        await r.start(call_id=call_id, route=route, caller_number=number, started_at=at)
        await r.finish(reason)

    await call("SCL_a", "support", "+442071234567", NOW, "CLIENT_INITIATED")
    await call("SCL_b", "sales", "+15105550100", NOW + 10, "AGENT_HANGUP")
    await call("SCL_c", "support", "+15105559999", NOW + DAY_S, "CLIENT_INITIATED")

    async def ids(where: CallFilter) -> list[str]:
        return [c.call_id for c in await find_calls(db, where, now=NOW + 2 * DAY_S)]

    assert await ids(CallFilter()) == ["SCL_c", "SCL_b", "SCL_a"]
    assert await ids(CallFilter(route="support")) == ["SCL_c", "SCL_a"]
    assert await ids(CallFilter(reason="AGENT_HANGUP")) == ["SCL_b"]
    assert await ids(CallFilter(since=NOW, until=NOW + 60)) == ["SCL_b", "SCL_a"]
    assert await ids(CallFilter(number="4567")) == ["SCL_a"]  # stored masked: +4420••••4567
    assert await ids(CallFilter(number="2071234")) == []  # the masked digits are not stored
    assert await ids(CallFilter(status="in_progress")) == []
    assert await ids(CallFilter(status="complete", limit=1)) == ["SCL_c"]
    assert await ids(CallFilter(number="%")) == []  # a LIKE wildcard is a character


# --- the caller's side, muted ---------------------------------------------------------------


class Frames(io.AudioInput):
    def __init__(self) -> None:
        super().__init__(label="test")

    async def __anext__(self) -> rtc.AudioFrame:
        data = (1000).to_bytes(2, "little", signed=True) * 160
        return rtc.AudioFrame(data, 16000, 1, 160)


async def test_muting_replaces_the_callers_frames_with_silence() -> None:
    muted = False
    source = Muting(Frames(), lambda: muted)
    loud = await source.__anext__()
    assert bytes(loud.data) != bytes(320)
    muted = True
    quiet = await source.__anext__()
    assert bytes(quiet.data) == bytes(320)
    assert (quiet.sample_rate, quiet.num_channels, quiet.samples_per_channel) == (16000, 1, 160)


# --- LiveKit Egress instead -----------------------------------------------------------------


class FakeEgress:
    """Stands in for LiveKit's egress service (a paid/hosted part the lab cannot run)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.requests: list[api.RoomCompositeEgressRequest] = []

    async def start_room_composite_egress(
        self, start: api.RoomCompositeEgressRequest
    ) -> api.EgressInfo:
        self.requests.append(start)
        if self.fail:
            raise ConnectionError("egress not connected")
        return api.EgressInfo(egress_id="EG_test")


@pytest.mark.parametrize("fail", [False, True])
async def test_an_egress_records_the_room_or_the_record_says_why(
    tmp_path: Path, fail: bool
) -> None:
    db = await open_database(f"sqlite:///{tmp_path / 'db'}")
    recorder = CallRecorder(db, heartbeat_s=None, save_after_s=None)
    await recorder.start(call_id="SCL_eg", route="support")
    egress = FakeEgress(fail)
    await start_egress(egress, recorder, "call-room", "SCL_eg", consent=True)
    await recorder.finish("CLIENT_INITIATED")
    record = await get_call(db, "SCL_eg")
    await db.close()
    (request,) = egress.requests
    assert request.room_name == "call-room" and request.audio_only
    assert request.file_outputs[0].filepath.startswith("recordings/")
    assert record is not None
    (part,) = record.summary.recordings
    if fail:
        assert part.file is None and part.error == "egress not started: ConnectionError"
    else:
        assert part.egress_id == "EG_test" and part.file and part.consent


# --- the latency chart ------------------------------------------------------------------------


def test_latency_is_charted_when_the_record_has_it() -> None:
    turns = (
        Turn("user", "hi", 1.0, {"end_of_turn_ms": 300.0, "transcription_ms": 200.0}),
        Turn("assistant", "hello", 2.0, {"llm_ttft_ms": 400.0, "tts_ttfb_ms": 200.0}),
        Turn("assistant", "more", 3.0, {"llm_ttft_ms": 300.0, "e2e_ms": 1500.0}),
        Turn("assistant", "none", 4.0),
    )
    summary = CallSummary("SCL_1", None, None, None, None, 0.0, 0.0, 5.0, "complete", None, 4)
    record = CallRecord(summary, (), turns, (), {}, {}, None)
    bars = latency_bars(record)
    assert [b.label for b in bars] == ["turn 1", "turn 2"]
    assert [round(b.total, 6) for b in bars] == [0.6, 1.5]
    stage, seconds = bars[1].parts[0]
    assert stage == "turn end and transcript" and abs(seconds - 1.2) < 1e-9
    svg = bar_chart(bars)
    assert svg.startswith("<svg") and "LLM first token: 0.40 s" in svg and "1.50 s" in svg
    assert bar_chart([]) == ""
    strip = timeline_strip(record)
    assert strip.count("<rect") == 4 and "caller" in strip


# --- a job that dies ----------------------------------------------------------------------------


def test_a_killed_recorder_leaves_a_playable_file(tmp_path: Path) -> None:
    """The recorder is killed (SIGKILL, no clean-up) mid-call: the file it leaves decodes
    and holds the caller's audio up to a few seconds before the kill."""
    path = tmp_path / "call.ogg"
    child = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("recording_crash_child.py")), str(path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
    )
    try:
        assert child.stdout is not None and child.stdout.readline() == b"recording\n"
        # Wait (under a deadline) until 8 s of audio must have been encoded and written.
        deadline = time.monotonic() + 120
        while (size := path.stat().st_size if path.exists() else 0) < 40_000:  # about 4 s
            assert time.monotonic() < deadline, f"only {size} bytes written"
            assert child.poll() is None, "the recorder died by itself"
            time.sleep(0.2)
    finally:
        child.kill()
        child.wait(timeout=30)
    left = read_stereo(path)
    assert left.seconds > 2.0
    assert loud_seconds(left.left, left.rate) > 2.0
    assert abs(dominant_hz(left.left, left.rate) - 440) < 10
    assert loud_seconds(left.right, left.rate) == 0.0
