"""Settings: one clear error per problem, defaults, keyless detection."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import get_type_hints

import pytest

from switchboard.config.env import EnvVar, Number, declarations
from switchboard.config.errors import ConfigError
from switchboard.config.models import inference_llms, inference_tts
from switchboard.config.settings import ENV_VARS, Settings, env_example, load_settings
from switchboard.config.startup import ai_summary

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


VLLM = {**SERVER, "SWITCHBOARD_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1"}
OPENAI = {**SERVER, "SWITCHBOARD_OPENAI_BASE_URL": "https://api.openai.com/v1"}


def test_openai_base_url_selects_openai_mode_and_its_voice() -> None:
    s = load_settings(OPENAI)
    assert (s.ai.mode, s.ai.tts) == ("openai", "openai")
    assert (s.ai.llm_model, s.ai.tts_model) == ("gpt-4.1-mini", "gpt-4o-mini-tts")
    assert s.ai.openai_base_url == "https://api.openai.com/v1"


def test_a_self_hosted_endpoint_speaks_offline_unless_given_a_speech_endpoint() -> None:
    # vLLM and Ollama have no /audio/speech: the voice is espeak unless one is named.
    s = load_settings({**VLLM, "SWITCHBOARD_LLM_MODEL": "llama3.1:8b"})
    assert (s.ai.mode, s.ai.tts, s.ai.llm_model) == ("openai", "espeak", "llama3.1:8b")
    kokoro = "http://127.0.0.1:8880/v1"
    s = load_settings({**VLLM, "SWITCHBOARD_LLM_MODEL": "m", "SWITCHBOARD_TTS_BASE_URL": kokoro})
    assert (s.ai.tts, s.ai.tts_base_url, s.ai.tts_model) == ("openai", kokoro, "gpt-4o-mini-tts")


def test_a_self_hosted_endpoint_needs_its_model_named() -> None:
    with pytest.raises(ConfigError, match="SWITCHBOARD_LLM_MODEL is not set") as e:
        load_settings(VLLM)
    assert "GET <base URL>/models" in str(e.value)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        # an Inference name sent to an OpenAI-compatible server: refused, with the fix
        (
            {**VLLM, "SWITCHBOARD_LLM_MODEL": "openai/gpt-4.1-mini"},
            "is a LiveKit Inference name, but the AI mode is openai",
        ),
        (
            {**OPENAI, "SWITCHBOARD_LLM_FALLBACK_MODEL": "google/gemini-2.5-flash"},
            "SWITCHBOARD_LLM_FALLBACK_MODEL='google/gemini-2.5-flash' is a LiveKit Inference",
        ),
        (
            {**OPENAI, "SWITCHBOARD_TTS_MODEL": "cartesia/sonic-2"},
            "is a LiveKit Inference voice",
        ),
        # and a bare name sent to LiveKit Inference
        (
            {**SERVER, "LIVEKIT_URL": "wss://a.livekit.cloud", "SWITCHBOARD_LLM_MODEL": "gpt-4o"},
            "'gpt-4o' is not a LiveKit Inference name",
        ),
    ],
)
def test_model_names_are_checked_against_the_mode(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ConfigError, match=expected) as e:
        load_settings(env)
    assert "fix:" in str(e.value)


def test_names_a_self_hosted_server_may_serve_are_accepted() -> None:
    for name in ("openai/gpt-oss-120b", "Qwen/Qwen2.5-7B-Instruct", "google/gemma-3-27b-it"):
        assert load_settings({**VLLM, "SWITCHBOARD_LLM_MODEL": name}).ai.llm_model == name


def test_inference_mode_fills_its_own_defaults() -> None:
    s = load_settings({**SERVER, "LIVEKIT_URL": "wss://a.livekit.cloud"})
    assert (s.ai.tts, s.ai.llm_model, s.ai.tts_model) == (
        "inference",
        "openai/gpt-4.1-mini",
        "cartesia/sonic-2",
    )


def test_the_example_prefills_no_model_of_one_mode() -> None:
    example = env_example()
    for name in ("SWITCHBOARD_LLM_MODEL", "SWITCHBOARD_TTS_MODEL"):
        assert f"\n{name}=\n" in example


def test_the_inference_prefixes_match_the_frameworks_catalogue() -> None:
    # The refused names are the framework's own list: a new Inference model is refused too.
    assert "openai/gpt-4.1-mini" in inference_llms()
    assert "cartesia/sonic-2" in inference_tts()


def test_the_start_says_which_speech_to_text_wins() -> None:
    env = {**OPENAI, "DEEPGRAM_API_KEY": "dg"}
    lines = ai_summary(load_settings(env).ai)
    assert "speech-to-text: Deepgram (DEEPGRAM_API_KEY is set, instead of whisper-1 at " in (
        "\n".join(lines)
    )
    lines = ai_summary(load_settings(OPENAI).ai)
    assert any(
        line.startswith("speech-to-text: whisper-1 at https://api.openai.com/v1") for line in lines
    )
    secret = {**SERVER, "SWITCHBOARD_OPENAI_BASE_URL": "http://u:pw@10.0.0.5:8000/v1"}
    lines = ai_summary(load_settings({**secret, "SWITCHBOARD_LLM_MODEL": "m"}).ai)
    assert "pw" not in "\n".join(lines) and "http://10.0.0.5:8000/v1" in lines[0]
    assert lines[-1].startswith("voice: espeak-ng (offline): http://10.0.0.5:8000/v1 has no")


def test_a_deepgram_endpoint_of_ones_own_is_a_url_and_is_shown_without_its_password() -> None:
    env = {
        **OPENAI,
        "DEEPGRAM_API_KEY": "dg",
        "SWITCHBOARD_DEEPGRAM_BASE_URL": "wss://u:pw@dg.lan/v1/listen",
    }
    shown = "\n".join(ai_summary(load_settings(env).ai))
    assert "speech-to-text: Deepgram at wss://dg.lan/v1/listen (DEEPGRAM_API_KEY" in shown
    assert "pw" not in shown
    with pytest.raises(ConfigError, match="SWITCHBOARD_DEEPGRAM_BASE_URL"):
        load_settings({**env, "SWITCHBOARD_DEEPGRAM_BASE_URL": "dg.lan:443"})


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
