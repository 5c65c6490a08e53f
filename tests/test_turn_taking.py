"""Turn-taking per route: routes.toml's [route.turn], its checks, and what the session
and the voice detector are given."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.call.turn_taking import tune_vad, turn_handling
from switchboard.config.errors import ConfigError
from switchboard.config.prompts import DEFAULT_DIR
from switchboard.config.routes import load_routes, parse_routes
from switchboard.routing import RouteTable
from switchboard.turn_taking import FRAMEWORK_DEFAULT, MODEL_MIN_VAD_SILENCE, TurnTaking

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = '[[route]]\nname = "default"\n'


def parse(turn: str) -> RouteTable:
    text = f"{DEFAULT}[route.turn]\n{turn}\n"
    return parse_routes(text, source="routes.toml", known_prompts={"default"})


def problems(turn: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(turn)
    return list(info.value.problems)


def test_no_table_gives_the_phone_defaults() -> None:
    table = parse_routes(DEFAULT, source="routes.toml", known_prompts={"default"})
    assert table.routes[0].turn == TurnTaking()
    assert TurnTaking() != FRAMEWORK_DEFAULT


def test_every_field_is_read() -> None:
    turn = (
        parse(
            'detection = "vad"\nmin_endpointing_delay = 0.1\nmax_endpointing_delay = 2\n'
            "vad_min_silence = 0.25\nallow_interruptions = false\nmin_interruption_duration = 0.8\n"
            "min_interruption_words = 2\nfalse_interruption_timeout = 3.0\n"
            "resume_false_interruption = false\npreemptive_generation = false"
        )
        .routes[0]
        .turn
    )
    assert turn == TurnTaking(
        detection="vad",
        min_endpointing_delay=0.1,
        max_endpointing_delay=2,
        vad_min_silence=0.25,
        allow_interruptions=False,
        min_interruption_duration=0.8,
        min_interruption_words=2,
        false_interruption_timeout=3.0,
        resume_false_interruption=False,
        preemptive_generation=False,
    )


def test_out_of_bounds_names_route_field_range_and_fix() -> None:
    assert problems("max_endpointing_delay = 30") == [
        "routes.toml: [[route]] #1 (\"default\"), field 'turn.max_endpointing_delay': 30 is "
        "outside 0.2 to 6 seconds\n"
        "  fix: write max_endpointing_delay = 1.6 (from 0.2 to 6 seconds), without quotes"
    ]


def test_every_problem_of_the_table_in_one_run() -> None:
    found = problems(
        'detection = "vda"\nvad_min_silence = "0.3"\nmin_interruption_words = 1.5\n'
        "preemptive_generation = 1\nmax_delay = 1"
    )
    assert len(found) == 5, found
    text = "\n".join(found)
    assert "turn.detection': unknown end-of-turn detection 'vda'" in text
    assert "did you mean 'vad'?" in text
    assert "turn.vad_min_silence': expected a number, got '0.3'" in text
    assert "turn.min_interruption_words': expected a whole number, got 1.5" in text
    assert "turn.preemptive_generation': expected true or false" in text
    assert "turn.max_delay': unknown key" in text
    assert "max_endpointing_delay" in text  # the suggestion for the unknown key


def test_max_shorter_than_min_is_refused() -> None:
    (found,) = problems("min_endpointing_delay = 1.5\nmax_endpointing_delay = 1.0")
    assert "max_endpointing_delay (1 s) is shorter than min_endpointing_delay (1.5 s)" in found
    assert "fix: make max_endpointing_delay at least min_endpointing_delay" in found


def test_model_detection_needs_the_silence_its_model_scores() -> None:
    (found,) = problems("vad_min_silence = 0.2")
    assert "vad_min_silence (0.2 s) is shorter than the end-of-turn model needs (0.25 s)" in found
    assert 'detection = "vad"' in found
    turn = parse('detection = "vad"\nvad_min_silence = 0.2').routes[0].turn
    assert turn.vad_min_silence == 0.2  # silence alone: no model to feed


def test_the_model_silence_floor_is_the_frameworks() -> None:
    # livekit-agents raises at session start under this (AudioRecognition's check).
    from livekit.agents.inference.eot.base import MIN_SILENCE_DURATION_MS

    assert MODEL_MIN_VAD_SILENCE == (MIN_SILENCE_DURATION_MS + 50) / 1000


def test_a_bool_is_not_a_number() -> None:
    (found,) = problems("min_interruption_words = true")
    assert "expected a whole number, got True" in found


def test_not_a_table() -> None:
    text = f'{DEFAULT}turn = "fast"\n'
    with pytest.raises(ConfigError) as info:
        parse_routes(text, source="routes.toml", known_prompts={"default"})
    assert "field 'turn': expected a table" in str(info.value)


def test_the_labs_framework_route_holds_the_framework_values() -> None:
    # bench/turns.py compares the defaults against this route: it must stay what it says.
    table = load_routes(ROOT / "lab/routes.toml", DEFAULT_DIR)
    (route,) = [r for r in table.routes if r.name == "lab-turns-framework"]
    assert route.turn == FRAMEWORK_DEFAULT


def test_model_detection_leaves_the_detector_to_the_framework() -> None:
    options = turn_handling(TurnTaking())
    assert "turn_detection" not in options
    assert options["endpointing"] == {"min_delay": 0.2, "max_delay": 1.6}
    assert options["interruption"]["mode"] == "vad"
    assert options["interruption"]["false_interruption_timeout"] == 1.5
    assert options["preemptive_generation"] == {"enabled": True}


def test_vad_detection_and_no_barge_in() -> None:
    options = turn_handling(TurnTaking(detection="vad", allow_interruptions=False))
    assert options["turn_detection"] == "vad"
    assert options["interruption"]["enabled"] is False


def test_the_vad_silence_is_set_on_the_call_detector() -> None:
    from livekit.plugins import silero

    model = silero.VAD.load()
    tune_vad(model, TurnTaking(vad_min_silence=0.25))
    assert isinstance(model, silero.VAD)
    assert model.min_silence_duration == 0.25
