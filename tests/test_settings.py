"""Settings: one clear error per problem, defaults, keyless detection."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest

from switchboard.config.env import EnvVar, Number, declarations
from switchboard.config.errors import ConfigError
from switchboard.config.settings import ENV_VARS, Settings, env_example, load_settings

pytestmark = pytest.mark.unit

SERVER = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "secret",
}


def test_defaults_with_a_local_server_are_keyless() -> None:
    s = load_settings(SERVER)
    assert s.server.agent_name == "switchboard"
    assert s.ai.keyless
    assert s.calls.participant_timeout == 20
    assert s.data.events_file is None


def test_livekit_cloud_url_selects_inference() -> None:
    s = load_settings({**SERVER, "LIVEKIT_URL": "wss://acme-x1.livekit.cloud"})
    assert s.ai.mode == "inference"


def test_explicit_keyless_wins_on_cloud() -> None:
    env = {**SERVER, "LIVEKIT_URL": "wss://a.livekit.cloud", "SWITCHBOARD_AI_MODE": "keyless"}
    assert load_settings(env).ai.keyless


def test_missing_server_variables_are_all_named() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({})
    text = str(e.value)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        assert f"{name} is not set" in text
    assert ".env.local" in text


def test_console_needs_no_server() -> None:
    assert load_settings({}, need_server=False).ai.keyless


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LIVEKIT_URL", "localhost:7880", "must start with wss://"),
        ("SWITCHBOARD_AGENT_NAME", "my agent!", "SWITCHBOARD_AGENT_NAME"),
        ("SWITCHBOARD_AI_MODE", "gpt", "must be one of auto, inference, openai, keyless"),
        ("SWITCHBOARD_AI_MODE", "openai", "needs SWITCHBOARD_OPENAI_BASE_URL"),
        ("SWITCHBOARD_OPENAI_BASE_URL", "ftp://x", "must start with http"),
        ("SWITCHBOARD_TTS", "loud", "must be one of auto, inference, openai, espeak"),
        ("SWITCHBOARD_PARTICIPANT_TIMEOUT", "soon", "is not a number"),
        ("SWITCHBOARD_PARTICIPANT_TIMEOUT", "0", "between 1 and 600"),
        ("SWITCHBOARD_WORKER_PORT", "70000", "between 0 and 65535"),
    ],
)
def test_malformed_values_say_what_to_fix(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        load_settings({**SERVER, name: value})


def test_events_file_is_a_path() -> None:
    s = load_settings({**SERVER, "SWITCHBOARD_EVENTS_FILE": "/tmp/e.jsonl"})
    assert s.data.events_file == Path("/tmp/e.jsonl")


def test_openai_base_url_selects_openai_mode_and_its_voice() -> None:
    s = load_settings({**SERVER, "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
    assert s.ai.mode == "openai"
    assert s.ai.tts == "openai"
    assert s.ai.openai_base_url == "http://127.0.0.1:8000/v1"


def test_keyless_always_speaks_with_espeak() -> None:
    assert load_settings({**SERVER, "SWITCHBOARD_TTS": "inference"}).ai.tts == "espeak"


def test_env_example_is_generated_from_the_code() -> None:
    example = (Path(__file__).resolve().parent.parent / ".env.example").read_text()
    assert example == env_example(), "run: uv run switchboard env-example > .env.example"
    for var in ENV_VARS:
        assert f"{var.name}=" in example


def test_configuration_reference_is_generated_from_the_code() -> None:
    from switchboard.config.reference import reference

    path = Path(__file__).resolve().parent.parent / "docs/CONFIGURATION.md"
    assert path.read_text() == reference(), (
        "run: uv run switchboard config-reference > docs/CONFIGURATION.md"
    )


def test_job_executor_is_checked() -> None:
    base = {"LIVEKIT_URL": "ws://x", "LIVEKIT_API_KEY": "k", "LIVEKIT_API_SECRET": "s"}
    assert load_settings(base).server.job_executor == "process"
    assert (
        load_settings({**base, "SWITCHBOARD_JOB_EXECUTOR": "thread"}).server.job_executor
        == "thread"
    )
    with pytest.raises(ConfigError, match="SWITCHBOARD_JOB_EXECUTOR='fork' must be process"):
        load_settings({**base, "SWITCHBOARD_JOB_EXECUTOR": "fork"})


# --- the declarations -------------------------------------------------------------------


def test_every_variable_is_declared_once_with_help_and_a_valid_default() -> None:
    names = [v.name for v in ENV_VARS]
    assert len(names) == len(set(names))
    for var in ENV_VARS:
        assert var.help.strip(), var.name
        assert var.part, var.name
        var.parse(var.default)  # raises if a default were out of its own range


def test_every_settings_field_is_read_from_a_declared_variable() -> None:
    parts = get_type_hints(Settings)
    assert [v.part for v in ENV_VARS] == sorted((v.part for v in ENV_VARS), key=list(parts).index)
    for part, cls in parts.items():
        assert list(declarations(cls)) == [f.name for f in fields(cls)]
        names = {d.name for d in declarations(cls).values()}
        assert {v.part for v in ENV_VARS if v.name in names} == {part}


def test_defaults_fill_every_part() -> None:
    s = load_settings(SERVER)
    assert s.server.worker_port == 8081 and s.server.load_threshold == 0.7
    assert s.calls.ring_timeout == 25 and s.calls.default_region == "US"
    assert s.data.directory_timeout == pytest.approx(0.15)  # milliseconds, kept in seconds
    assert s.data.url == "sqlite:///.switchboard/switchboard.db"
    assert s.files.routes == Path("routes.toml") and s.files.prompts.is_dir()
    assert (s.shutdown.mode, s.shutdown.drain_timeout) == ("finish", 1800)
    assert s.console.attributes == {}


@pytest.mark.parametrize(
    "var", [v for v in ENV_VARS if isinstance(v.parse, Number)], ids=lambda v: v.name
)
def test_numbers_out_of_range_name_the_variable_its_range_and_the_fix(var: EnvVar) -> None:
    number = var.parse
    assert isinstance(number, Number)
    for raw in (f"{number.high + 1:g}", f"{number.low - 1:g}"):
        with pytest.raises(ConfigError) as e:
            load_settings({**SERVER, var.name: raw})
        (problem,) = e.value.items
        assert problem.key == var.name
        assert (
            problem.problem
            == f"{var.name}={raw!r} must be between {number.low:g} and {number.high:g}"
        )
        assert problem.fix.startswith(f"set {var.name} to a")
    assert load_settings({**SERVER, var.name: f"{number.high:g}"})  # the bounds are allowed


def test_every_bad_variable_is_reported_at_once() -> None:
    env = {
        "SWITCHBOARD_WORKER_PORT": "x",
        "SWITCHBOARD_AI_MODE": "gpt",
        "SWITCHBOARD_DEFAULT_REGION": "XX",
        "SWITCHBOARD_CONSOLE_ATTRIBUTES": "lang",
    }
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    keys = [p.key or "" for p in e.value.items]
    assert sorted(keys) == sorted([*env, "LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"])
    assert all(p.source == "environment" and p.fix for p in e.value.items)


def test_the_region_is_checked_and_upper_cased() -> None:
    assert (
        load_settings({**SERVER, "SWITCHBOARD_DEFAULT_REGION": "gb"}).calls.default_region == "GB"
    )
    with pytest.raises(ConfigError, match="not a known region code"):
        load_settings({**SERVER, "SWITCHBOARD_DEFAULT_REGION": "UK"})
