"""Read a route's ``[route.turn]`` table: its turn-taking, checked against bounds.

Each problem names the route and the field (``turn.max_endpointing_delay``) and says the
range, so the operator sees every mistake of the table in one run of `switchboard check`.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any

from switchboard.config.reader import Table, suggest
from switchboard.turn_taking import BOUNDS, DETECTIONS, MODEL_MIN_VAD_SILENCE, TurnTaking

TURN_KEYS = tuple(f.name for f in fields(TurnTaking))
_FLAGS = ("allow_interruptions", "resume_false_interruption", "preemptive_generation")
_DEFAULTS = TurnTaking()


def read_turn(r: Table, data: Any) -> TurnTaking:
    """The route's turn-taking; the defaults after recording a problem (``r.ok`` turns
    False, so the route is refused)."""
    if not isinstance(data, dict):
        fix = "write [route.turn] then e.g. max_endpointing_delay = 1.2 on the next line"
        r.fail("turn", "expected a table", fix)
        return _DEFAULTS
    t = r.within("turn", data)
    t.keys(TURN_KEYS)
    values: dict[str, Any] = {}
    if "detection" in data:
        detection = t.text("detection")
        if detection is not None and detection not in DETECTIONS:
            fix = f'{suggest(detection, DETECTIONS)}write detection = "model" or "vad"'
            t.fail("detection", f"unknown end-of-turn detection {detection!r}", fix)
        elif detection is not None:
            values["detection"] = detection
    for key in _FLAGS:
        if key in data:
            values[key] = t.flag(key, getattr(_DEFAULTS, key))
    for key, (low, high) in BOUNDS.items():
        if key in data:
            whole = isinstance(getattr(_DEFAULTS, key), int)
            values[key] = _number(t, key, low, high, whole=whole)
    turn = replace(_DEFAULTS, **values)
    if turn.max_endpointing_delay < turn.min_endpointing_delay:
        fix = "make max_endpointing_delay at least min_endpointing_delay"
        problem = (
            f"max_endpointing_delay ({turn.max_endpointing_delay:g} s) is shorter than "
            f"min_endpointing_delay ({turn.min_endpointing_delay:g} s)"
        )
        t.fail("max_endpointing_delay", problem, fix)
    if turn.detection == "model" and turn.vad_min_silence < MODEL_MIN_VAD_SILENCE:
        fix = (
            f"write vad_min_silence = {MODEL_MIN_VAD_SILENCE:g} or more, "
            'or detection = "vad" (silence alone ends the turn)'
        )
        problem = (
            f"vad_min_silence ({turn.vad_min_silence:g} s) is shorter than the end-of-turn "
            f"model needs ({MODEL_MIN_VAD_SILENCE:g} s): calls on this route would fail"
        )
        t.fail("vad_min_silence", problem, fix)
    return turn


def _number(t: Table, key: str, low: float, high: float, *, whole: bool) -> float:
    value = t.data[key]
    default: float = getattr(_DEFAULTS, key)
    unit = "" if whole else " seconds"
    kind = "a whole number" if whole else "a number"
    fix = f"write {key} = {default:g} (from {low:g} to {high:g}{unit}), without quotes"
    # TOML true/false are Python bools, which are ints: refuse them explicitly.
    if isinstance(value, bool) or not isinstance(value, int | float):
        t.fail(key, f"expected {kind}, got {value!r}", fix)
    elif whole and not isinstance(value, int):
        t.fail(key, f"expected a whole number, got {value!r}", fix)
    elif not low <= value <= high:
        t.fail(key, f"{value!r} is outside {low:g} to {high:g}{unit}", fix)
    else:
        return value
    return default
