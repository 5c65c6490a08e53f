"""Speech and language providers for a session, chosen from the settings.

Keyless mode is a product feature: with no AI provider configured, the agent still
answers, speaks with an offline voice (espeak-ng) and says honestly that the assistant
is unavailable. Everything else goes through LiveKit Inference (LiveKit Cloud) or, for
speech-to-text, straight to Deepgram when ``DEEPGRAM_API_KEY`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from livekit.agents import inference, llm, stt, tts

from .caller import Caller
from .settings import Settings

# Deepgram's phone-call model is tuned for 8 kHz narrow-band audio; it is English-only,
# so other callers get the general multilingual model rather than a silent fallback.
PHONE_STT_MODEL = "nova-2-phonecall"
GENERAL_STT_MODEL = "nova-3"


@dataclass(frozen=True, slots=True)
class SttChoice:
    model: str
    language: str


def choose_stt(caller: Caller, language: str = "en-US") -> SttChoice:
    """Pick the speech model for a caller: phone audio and English → the phone-call model."""
    if caller.is_phone_call and language.lower().startswith("en"):
        return SttChoice(PHONE_STT_MODEL, language)
    return SttChoice(GENERAL_STT_MODEL, language)


@dataclass(frozen=True, slots=True)
class Providers:
    stt: stt.STT[Any] | None
    llm: llm.LLM[Any] | None
    tts: tts.TTS[Any]

    def describe(self) -> dict[str, str]:
        return {
            "stt": _name(self.stt),
            "llm": _name(self.llm),
            "tts": _name(self.tts),
        }


def build_providers(settings: Settings, caller: Caller) -> Providers:
    if settings.keyless:
        from .keyless import EspeakTTS

        return Providers(stt=None, llm=None, tts=EspeakTTS())
    choice = choose_stt(caller)
    speech: stt.STT[Any]
    if settings.deepgram_api_key:
        from livekit.plugins import deepgram

        speech = deepgram.STT(
            model=choice.model, language=choice.language, api_key=settings.deepgram_api_key
        )
    else:
        speech = inference.STT(model=f"deepgram/{choice.model}", language=choice.language)
    return Providers(
        stt=speech,
        llm=inference.LLM(model=settings.llm_model),
        tts=inference.TTS(model=settings.tts_model),
    )


def _name(component: object | None) -> str:
    if component is None:
        return "none"
    provider = getattr(component, "provider", type(component).__name__)
    model = getattr(component, "model", "")
    return f"{provider}/{model}" if model else str(provider)
