"""Model names checked against the AI mode they are sent to, and the defaults per mode.

A name is sent verbatim to its provider, and each mode names models its own way: LiveKit
Inference as ``provider/model`` (``openai/gpt-4.1-mini``), an OpenAI-compatible server by
the name it serves (``gpt-4.1-mini`` on api.openai.com, ``llama3.1:8b`` on Ollama,
``Qwen/Qwen2.5-7B-Instruct`` on vLLM). A name meant for the other mode would fail on the
first call, mid-greeting; here it stops the worker at start, with the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, get_args
from urllib.parse import urlparse

from switchboard.config.errors import Problem

SOURCE = "environment"
OPENAI_HOST = "api.openai.com"

# Per mode, what an empty SWITCHBOARD_LLM_MODEL / SWITCHBOARD_TTS_MODEL means: the same
# model family on each side, named as that side names it.
INFERENCE_LLM = "openai/gpt-4.1-mini"
OPENAI_LLM = "gpt-4.1-mini"
INFERENCE_TTS = "cartesia/sonic-2"
OPENAI_TTS = "gpt-4o-mini-tts"

# Open-weights models LiveKit Inference lists under the same name as their Hugging Face
# repository, which a vLLM server may serve verbatim: not refused in openai mode.
_OPEN_WEIGHTS = ("openai/gpt-oss-",)


def is_openai(base_url: str | None) -> bool:
    """The endpoint is OpenAI's own (which has speech), not a vLLM/Ollama-like server."""
    return (urlparse(base_url or "").hostname or "") == OPENAI_HOST


def default_llm(mode: str, base_url: str | None) -> str | None:
    """The model an empty SWITCHBOARD_LLM_MODEL means; None when there is no sensible one
    (a self-hosted server: only its operator knows what it serves)."""
    if mode == "inference":
        return INFERENCE_LLM
    return OPENAI_LLM if is_openai(base_url) else None


def default_tts(tts: str) -> str:
    return INFERENCE_TTS if tts == "inference" else OPENAI_TTS


def _catalogue(*unions: Any) -> frozenset[str]:
    names: set[str] = set()
    for union in unions:
        for literal in get_args(union):
            names.update(get_args(literal))
    return frozenset(names)


def inference_llms() -> frozenset[str]:
    """The LLM names LiveKit Inference lists (livekit-agents' own catalogue)."""
    # Imported here: the CLI reads settings without loading the framework (seconds).
    from livekit.agents.inference.llm import LLMModels

    return _catalogue(LLMModels)


def inference_tts() -> frozenset[str]:
    from livekit.agents.inference.tts import TTSModels

    return _catalogue(TTSModels)


def model_problems(
    mode: str, tts: str, llm_models: Iterable[tuple[str, str]], tts_model: str
) -> list[Problem]:
    """Each model name that does not fit the mode it goes to. ``llm_models`` are
    (variable, name) pairs: the model and its fallback."""
    problems = []
    for variable, name in llm_models:
        if mode == "openai" and name in inference_llms() and not name.startswith(_OPEN_WEIGHTS):
            own = name.split("/", 1)[1]
            problems.append(
                Problem(
                    SOURCE,
                    "",
                    variable,
                    f"{variable}={name!r} is a LiveKit Inference name, but the AI mode is "
                    "openai: it would be sent as is to SWITCHBOARD_OPENAI_BASE_URL",
                    f"set it to the name your server serves (GET <base URL>/models lists "
                    f"them), e.g. {own!r} on api.openai.com, 'llama3.1:8b' on Ollama",
                )
            )
        elif mode == "inference" and "/" not in name:
            problems.append(
                Problem(
                    SOURCE,
                    "",
                    variable,
                    f"{variable}={name!r} is not a LiveKit Inference name (provider/model)",
                    f"write it as provider/model, e.g. {INFERENCE_LLM!r}; or, to use your own "
                    "OpenAI-compatible server, set SWITCHBOARD_OPENAI_BASE_URL",
                )
            )
    if tts == "openai" and tts_model in inference_tts():
        problems.append(
            Problem(
                SOURCE,
                "",
                "SWITCHBOARD_TTS_MODEL",
                f"SWITCHBOARD_TTS_MODEL={tts_model!r} is a LiveKit Inference voice, but the "
                "voice is an OpenAI-compatible speech endpoint",
                f"set it to a model of that endpoint (e.g. {OPENAI_TTS!r} on api.openai.com), "
                "or leave it empty",
            )
        )
    elif tts == "inference" and tts_model and "/" not in tts_model:
        problems.append(
            Problem(
                SOURCE,
                "",
                "SWITCHBOARD_TTS_MODEL",
                f"SWITCHBOARD_TTS_MODEL={tts_model!r} is not a LiveKit Inference name "
                "(provider/model)",
                f"write it as provider/model, e.g. {INFERENCE_TTS!r}, or leave it empty",
            )
        )
    return problems
