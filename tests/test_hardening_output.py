"""Issue 15, finding 5: what reaches the operator's terminal, and who can read the files.

Crafted CSV header names and values, config values and caller data printed raw drove the
terminal (escape sequences) or reversed lines (bidi overrides); the SQLite database and
its folder were world-readable; PostgreSQL passwords must never be printed."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from switchboard.cli.main import main
from switchboard.config.errors import ConfigError, Problem
from switchboard.config.policy import parse_policy
from switchboard.config.routes import parse_routes
from switchboard.config.settings import load_settings
from switchboard.data.db import open_database
from switchboard.events_file import append_event
from switchboard.safe_text import printable, redact_urls, safe_json, shown

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
ESC = "\x1b]0;owned\x07\x1b[2J"  # retitle the window, clear the screen
RLO = "\u202e"  # right-to-left override: "\u202etxt.exe" reads "exe.txt"
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
UNSAFE = ("\x1b", "\x07", *BIDI, "\x9b", "\u2028", "\ufeff", "\x00")


def clean(text: str) -> bool:
    return not any(c in text for c in UNSAFE)


def test_printable_escapes_controls_and_bidi_visibly() -> None:
    assert printable(f"a{ESC}b") == "a\\x1b]0;owned\\x07\\x1b[2Jb"
    assert printable(f"{RLO}gpj.exe") == "\\u202egpj.exe"
    assert clean(printable(BIDI + ESC + "\x9b\u2028\ufeff\x00"))
    assert printable("Zoë Ünal, 北京 ☎") == "Zoë Ünal, 北京 ☎"  # letters are not escaped
    assert printable("a\nb", keep="\n") == "a\nb" and printable("a\nb") == "a\\x0ab"


def test_safe_json_is_the_same_document() -> None:
    document = {"name": f"x{RLO}y{ESC}", "k\u2066": ["\x9b", "é"]}
    text = safe_json(document, indent=2)
    assert clean(text) and json.loads(text) == document


def test_urls_lose_their_passwords() -> None:
    text = "cannot reach postgresql+asyncpg://app:s3cr%40t@db.internal:5432/calls (timeout)"
    assert redact_urls(text) == (
        "cannot reach postgresql+asyncpg://app:***@db.internal:5432/calls (timeout)"
    )
    assert "s3cr" not in shown(f"DATABASE_URL=postgres://u:s3cr@h/d{ESC}")
    assert redact_urls("sip:+15105550100@pbx.example.com") == "sip:+15105550100@pbx.example.com"


def test_config_errors_escape_what_the_file_says() -> None:
    problem = Problem(f"r{ESC}.toml", f'[[route]] #1 ("{RLO}x")', f"k{ESC}", f"v{RLO}", "fix")
    assert clean(str(problem)) and clean(str(ConfigError([problem])))
    with pytest.raises(ConfigError) as e:
        parse_routes(
            '[[route]]\nname = "a\\u202eb\\u001b[2J"\n[[route]]\nname = "default"\n',
            source="routes.toml",
            known_prompts={"default"},
        )
    assert "\\u202e" in str(e.value) and clean(str(e.value))
    with pytest.raises(ConfigError) as e:
        parse_policy(f'[dial_policy.default]\nallowed_regions = ["U{RLO}S{ESC}"]\n')
    assert clean(str(e.value))


def test_environment_errors_escape_and_redact() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({"SWITCHBOARD_RING_TIMEOUT": f"5{ESC}{RLO}"}, need_server=False)
    assert clean(str(e.value))


def test_directory_show_escapes_csv_headers_and_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'db.sqlite'}")
    csv = tmp_path / "contacts.csv"
    csv.write_text(
        f'number,name,notes,"crm{ESC}id","tier{RLO}"\n'
        f'+44 20 7123 4567,"Alice {RLO}evil",ok,"4{RLO}2",gold\n',
        encoding="utf-8",
    )
    assert main(["directory", "import", str(csv)]) in (0, 1)
    imported = capsys.readouterr()
    assert clean(imported.out + imported.err)
    assert main(["directory", "show", "+442071234567"]) == 0
    out, err = capsys.readouterr()
    assert clean(out + err)
    assert "\\u202e" in out and "\\x1b" in out


def test_calls_json_and_route_output_escape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    attr = f"customer_id={ESC}{RLO}"
    code = main(["route", "--routes", str(ROOT / "routes.toml"), "--attr", attr])
    out = capsys.readouterr().out
    assert code == 0 and clean(out)
    assert main(["route", "--routes", str(ROOT / "routes.toml"), "--attr", attr, "--json"]) == 0
    out = capsys.readouterr().out
    assert clean(out) and json.loads(out)["caller"]
    assert main(["dial-check", f"+1510{ESC}", "--policy", str(ROOT / "policy.toml")]) == 1
    captured = capsys.readouterr()
    assert clean(captured.out + captured.err)


def test_sqlite_database_and_folder_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: the files came out 0644 in a 0755 folder
    try:
        state = tmp_path / "state" / "inner"

        async def open_close() -> None:
            db = await open_database(f"sqlite:///{state / 'switchboard.db'}")
            await db.close()

        asyncio.run(open_close())
        append_event(tmp_path / "events" / "calls.jsonl", {"event": "x"})
    finally:
        os.umask(old)
    for folder in (state, state.parent, tmp_path / "events"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for file in (state / "switchboard.db", tmp_path / "events" / "calls.jsonl"):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    for extra in state.glob("switchboard.db-*"):  # -wal, -shm: SQLite copies the mode
        assert stat.S_IMODE(extra.stat().st_mode) & 0o077 == 0, extra


def test_postgres_password_never_printed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A port nothing listens on: the connection fails, and the message names the URL.
    monkeypatch.setenv("DATABASE_URL", "postgresql://app:hunter2@127.0.0.1:9/calls")
    assert main(["calls"]) == 1
    captured = capsys.readouterr()
    assert "hunter2" not in captured.out + captured.err
    assert "***" in captured.err
    settings = load_settings(
        {"DATABASE_URL": "postgresql://app:hunter2@db/calls"}, need_server=False
    )
    assert "hunter2" not in repr(settings)
