"""What the worker says about its configuration when it starts: who listens, thinks and
speaks (and why, where a rule chose: Deepgram's key wins over the Whisper endpoint), and
what a caller would hear in English although their route speaks another language.

Pure functions of the values read at start; ``agent.py`` logs them.
"""

from __future__ import annotations

from collections import defaultdict
from urllib.parse import urlparse

from switchboard.config.prompts import BASE_LANGUAGE, Prompts, primary_language, untranslated
from switchboard.config.settings import AiSettings
from switchboard.routing import RouteTable


def _endpoint(url: str | None) -> str:
    """A base URL as shown in logs: never its user or password."""
    parts = urlparse(url or "")
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def ai_summary(ai: AiSettings) -> list[str]:
    """One line each for the mode, the speech-to-text, the LLM and the voice."""
    if ai.keyless:
        return ["AI: keyless: the offline voice (espeak-ng) says the assistant is unavailable"]
    base = _endpoint(ai.openai_base_url)
    if ai.mode == "openai":
        lines = [f"AI: openai mode, endpoint {base}"]
        whisper = f"{ai.stt_model} at {_endpoint(ai.stt_base_url or ai.openai_base_url)}"
    else:
        lines = ["AI: LiveKit Inference"]
        whisper = ""
    if ai.deepgram_api_key:
        instead = f", instead of {whisper}" if whisper else ""
        at = f" at {_endpoint(ai.deepgram_base_url)}" if ai.deepgram_base_url else ""
        lines.append(f"speech-to-text: Deepgram{at} (DEEPGRAM_API_KEY is set{instead})")
    elif whisper:
        lines.append(f"speech-to-text: {whisper} (set DEEPGRAM_API_KEY to use Deepgram)")
    else:
        lines.append("speech-to-text: Deepgram via LiveKit Inference")
    fallback = f", then {ai.llm_fallback_model}" if ai.llm_fallback_model else ""
    lines.append(f"LLM: {ai.llm_model}{fallback}")
    if ai.tts == "openai":
        lines.append(f"voice: {ai.tts_model} at {_endpoint(ai.tts_base_url or ai.openai_base_url)}")
    elif ai.tts == "inference":
        lines.append(f"voice: {ai.tts_model} via LiveKit Inference")
    elif ai.mode == "openai":
        lines.append(
            f"voice: espeak-ng (offline): {base} has no speech endpoint that we know of; "
            "set SWITCHBOARD_TTS_BASE_URL to one for a better voice"
        )
    else:
        lines.append("voice: espeak-ng (offline), as SWITCHBOARD_TTS asks")
    return lines


def keyless_language_warnings(prompts: Prompts, routes: RouteTable) -> list[str]:
    """Routes whose language has no ``keyless_<language>.md``: their callers would hear
    the English keyless text, read by a voice of their language."""
    by_language: defaultdict[str, list[str]] = defaultdict(list)
    for route in routes.routes:
        by_language[primary_language(route.language)].append(route.name)
    return [
        f"keyless: no {prompts.folder.name}/keyless_{lang}.md, so callers on "
        f"{_routes(by_language[lang])} (language {lang}) hear the {BASE_LANGUAGE} text; "
        "add that file with the text in their language"
        for lang in untranslated(prompts, "keyless", by_language)
    ]


def _routes(names: list[str]) -> str:
    return f"route {names[0]}" if len(names) == 1 else f"routes {', '.join(names)}"
