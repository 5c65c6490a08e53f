"""Settings: one clear error per problem, defaults, keyless detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.config.settings import ENV_VARS, ConfigError, env_example, load_settings

pytestmark = pytest.mark.unit

SERVER = {
    "LIVEKIT_URL": "ws://127.0.0.1:7880",
    "LIVEKIT_API_KEY": "devkey",
    "LIVEKIT_API_SECRET": "secret",
}


def test_defaults_with_a_local_server_are_keyless() -> None:
    s = load_settings(SERVER)
    assert s.agent_name == "switchboard"
    assert s.keyless
    assert s.participant_timeout == 20
    assert s.events_file is None


def test_livekit_cloud_url_selects_inference() -> None:
    s = load_settings({**SERVER, "LIVEKIT_URL": "wss://acme-x1.livekit.cloud"})
    assert s.ai_mode == "inference"


def test_explicit_keyless_wins_on_cloud() -> None:
    env = {**SERVER, "LIVEKIT_URL": "wss://a.livekit.cloud", "SWITCHBOARD_AI_MODE": "keyless"}
    assert load_settings(env).keyless


def test_missing_server_variables_are_all_named() -> None:
    with pytest.raises(ConfigError) as e:
        load_settings({})
    text = str(e.value)
    for name in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        assert f"{name} is not set" in text
    assert ".env.local" in text


def test_console_needs_no_server() -> None:
    assert load_settings({}, need_server=False).keyless


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
    assert s.events_file == Path("/tmp/e.jsonl")


def test_openai_base_url_selects_openai_mode_and_its_voice() -> None:
    s = load_settings({**SERVER, "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"})
    assert s.ai_mode == "openai"
    assert s.tts == "openai"
    assert s.openai_base_url == "http://127.0.0.1:8000/v1"


def test_keyless_always_speaks_with_espeak() -> None:
    assert load_settings({**SERVER, "SWITCHBOARD_TTS": "inference"}).tts == "espeak"


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
    assert load_settings(base).job_executor == "process"
    assert load_settings({**base, "SWITCHBOARD_JOB_EXECUTOR": "thread"}).job_executor == "thread"
    with pytest.raises(ConfigError, match="SWITCHBOARD_JOB_EXECUTOR='fork' must be process"):
        load_settings({**base, "SWITCHBOARD_JOB_EXECUTOR": "fork"})
