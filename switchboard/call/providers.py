"""Speech and language providers for one call, chosen from the settings and the route.

Keyless mode is a product feature: with no AI provider configured, the agent still
answers, speaks with an offline voice (espeak-ng) and says honestly that the assistant
is unavailable. Otherwise the LLM and STT come from LiveKit Inference (LiveKit Cloud) or
an OpenAI-compatible endpoint (self-hosted), speech-to-text straight from Deepgram when
``DEEPGRAM_API_KEY`` is set, and the voice always has espeak-ng behind it as a fallback,
so a failing TTS provider never leaves the caller in silence.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import httpx2 as httpx
import openai as openai_sdk
from livekit.agents import inference, llm, stt, tts

# Plugins register on the main thread at import, and openai's is slow to import: load
# them with the worker, not in the middle of a call.
from livekit.plugins import deepgram, openai

from switchboard.call.keyless import EspeakTTS
from switchboard.caller import Caller
from switchboard.config.settings import AiSettings, Settings
from switchboard.routing import Route, stt_model_for

# LiveKit Inference and our offline voice speak at different rates; the fallback adapter
# needs one rate for all voices.
VOICE_SAMPLE_RATE = 24000


@dataclass(frozen=True, slots=True)
class Providers:
    stt: stt.STT[Any] | None
    llm: llm.LLM[Any] | None
    tts: tts.TTS[Any]

    def describe(self) -> dict[str, str]:
        return {"stt": _name(self.stt), "llm": _name(self.llm), "tts": _name(self.tts)}


def build_providers(settings: Settings, caller: Caller, route: Route) -> Providers:
    offline_voice = EspeakTTS(voice=_espeak_voice(route.language), sample_rate=VOICE_SAMPLE_RATE)
    if settings.ai.keyless:
        return Providers(stt=None, llm=None, tts=offline_voice)
    voice = _voice(settings.ai)
    return Providers(
        stt=_speech_to_text(settings.ai, caller, route),
        llm=_language_model(settings.ai),
        tts=tts.FallbackAdapter([voice, offline_voice], sample_rate=VOICE_SAMPLE_RATE),
    )


# livekit-plugins-deepgram's own default, named: the setting's empty value means it.
DEEPGRAM_CLOUD = "https://api.deepgram.com/v1/listen"


def _speech_to_text(ai: AiSettings, caller: Caller, route: Route) -> stt.STT[Any]:
    model = stt_model_for(route, caller)
    if ai.deepgram_api_key:
        return deepgram.STT(
            model=model,
            language=route.language,
            api_key=ai.deepgram_api_key,
            base_url=ai.deepgram_base_url or DEEPGRAM_CLOUD,
        )
    if ai.mode == "openai":
        return openai.STT(
            client=openai_client(
                ai.stt_base_url or ai.openai_base_url or "",
                ai.stt_api_key or ai.openai_api_key or "none",
            ),
            model=ai.stt_model,
            language=route.language.split("-")[0],
            use_realtime=False,
        )
    return inference.STT(model=f"deepgram/{model}", language=route.language)


def _language_model(ai: AiSettings) -> llm.LLM[Any]:
    primary = _one_model(ai, ai.llm_model)
    if not ai.llm_fallback_model:
        return primary
    # Switch to the second model at once rather than retrying the first: retries are
    # silence on the phone.
    return llm.FallbackAdapter(
        [primary, _one_model(ai, ai.llm_fallback_model)],
        attempt_timeout=2.5,
        max_retry_per_llm=0,
    )


def _one_model(ai: AiSettings, model: str) -> llm.LLM[Any]:
    if ai.mode == "openai":
        return openai.LLM(
            client=openai_client(ai.openai_base_url or "", ai.openai_api_key or "none"),
            model=model,
        )
    return inference.LLM(model=model)


def _voice(ai: AiSettings) -> tts.TTS[Any]:
    if ai.tts == "espeak":
        return EspeakTTS(sample_rate=VOICE_SAMPLE_RATE)
    if ai.tts == "openai":
        return openai.TTS(client=speech_client(ai), model=ai.tts_model, voice=ai.tts_voice)
    return inference.TTS(model=ai.tts_model)


def speech_client(ai: AiSettings) -> openai_sdk.AsyncClient:
    """The voice's endpoint: its own (SWITCHBOARD_TTS_BASE_URL), else the LLM's."""
    return openai_client(
        ai.tts_base_url or ai.openai_base_url or "",
        ai.tts_api_key or ai.openai_api_key or "none",
    )


@functools.cache
def openai_client(base_url: str, api_key: str) -> openai_sdk.AsyncClient:
    """One client per process for every OpenAI-compatible model (LLM, fallback, STT, TTS).

    Each plugin object would otherwise build its own, with its own SSL context from the CA
    bundle: the most expensive part of building a call's providers. The worker's prewarm
    builds it before the call (``warm_providers``); job processes serve one call each, so
    its connection pool never outlives the event loop it was used on.
    """
    return openai_sdk.AsyncClient(
        base_url=base_url,
        api_key=api_key,
        max_retries=0,  # retries are ours (faults.SESSION_OPTIONS): silence on the phone
        http_client=httpx.AsyncClient(
            timeout=httpx.Timeout(connect=15.0, read=5.0, write=5.0, pool=5.0),
            follow_redirects=True,
            limits=httpx.Limits(max_connections=50, max_keepalive_connections=50),
        ),
    )


def warm_providers(ai: AiSettings) -> None:
    """Build what every call's providers share, before the call: the HTTP client, and the
    SDK's resources on it, which it builds (and imports) at their first use otherwise."""
    if not ai.keyless and ai.mode == "openai":
        llm_client = openai_client(ai.openai_base_url or "", ai.openai_api_key or "none")
        _ = llm_client.chat.completions, llm_client.models  # the call; the session's prewarm
        if not ai.deepgram_api_key:
            stt_client = openai_client(
                ai.stt_base_url or ai.openai_base_url or "",
                ai.stt_api_key or ai.openai_api_key or "none",
            )
            _ = stt_client.audio.transcriptions
    if not ai.keyless and ai.tts == "openai":
        _ = speech_client(ai).audio.speech


def _espeak_voice(language: str) -> str:
    # espeak-ng names voices by language ("es", "fr", "en-us"); its default is English.
    primary = language.split("-")[0].lower()
    return "en-us" if primary == "en" else primary


def _name(component: object | None) -> str:
    if component is None:
        return "none"
    provider = getattr(component, "provider", type(component).__name__)
    model = getattr(component, "model", "")
    return f"{provider}/{model}" if model else str(provider)
