"""The route table: which speech model, language, prompt and tools a call gets.

Everything here is pure. ``route_for`` looks at the Caller value, the table and an
optional directory entry, and returns the first route whose conditions all hold. The
caller's numbers and attributes are untrusted: they are only compared with the
configured values, never parsed as anything but data, and never copied into the
reason text (which names the configured values only, so it is safe to log or show).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from switchboard.caller import Caller
from switchboard.menu import Menu
from switchboard.numbers import E164, region_of
from switchboard.turn_taking import TurnTaking

KNOWN_TOOLS = ("dial_out", "transfer", "list_participants", "end_call", "dtmf")
ROUTE_KINDS = ("sip", "standard")
DEFAULT_ROUTE = "default"
# Deepgram's phone-call model is tuned for 8 kHz narrow-band audio and is English-only;
# everyone else gets the general multilingual model. The one rule is stt_model_for below.
PHONE_STT_MODEL = "nova-2-phonecall"
GENERAL_STT_MODEL = "nova-3"
# A route with pin_env asks for a PIN before anything else (see switchboard.dtmf).
DEFAULT_PIN_ATTEMPTS = 3
DEFAULT_PIN_PROMPT = "Please enter your PIN, then press the hash key."

Values = tuple[str, ...]
Expected = Values | bool
_NO_VALUES: Mapping[str, Values] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Match:
    """Conditions of a route; None (or an empty table) means "any". All must hold."""

    kind: Values | None = None
    called_number: Values | None = None
    caller_number: Values | None = None
    caller_prefix: Values | None = None
    caller_region: Values | None = None
    trunk_id: Values | None = None
    rule_id: Values | None = None
    number_hidden: bool | None = None
    attributes: Mapping[str, Values] = field(default_factory=lambda: _NO_VALUES)
    directory: Mapping[str, Values] = field(default_factory=lambda: _NO_VALUES)

    @property
    def is_empty(self) -> bool:
        return not conditions(self)


@dataclass(frozen=True, slots=True)
class Route:
    """One [[route]] table: its conditions and what a matching call gets."""

    name: str
    match: Match = field(default_factory=Match)
    stt_model: str | None = None  # None: chosen per caller, see stt_model_for
    language: str = "en-US"
    prompt: str = "default"
    greeting: str | None = None
    tools: Values = ("end_call",)
    dial_policy: str | None = None
    transfer_destinations: Values = ()
    # The name of the environment variable that holds the PIN, never the PIN itself: the
    # routes file is checked in, the PIN is a secret of the deployment.
    pin_env: str | None = None
    pin_attempts: int = DEFAULT_PIN_ATTEMPTS
    pin_prompt: str = DEFAULT_PIN_PROMPT
    # A PIN route chosen only by custom attributes (X- headers: the caller's to set or
    # leave out) is refused at load unless this says the operator knows (config.routes).
    allow_caller_selected_pin: bool = False
    turn: TurnTaking = field(default_factory=TurnTaking)  # [route.turn]
    # What a caller hears when no AI can take the call: keys naming destinations.
    menu: Menu | None = None
    # The call is recorded (caller left, agent right; switchboard.call.recording), after
    # ``record_consent`` has been heard when the route has one.
    record: bool = False
    record_consent: str | None = None


@dataclass(frozen=True, slots=True)
class RouteTable:
    """Routes in priority order; the last is always the catch-all default route."""

    routes: tuple[Route, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        # Enforced here, not only by the loader, so route_for is total for any table.
        last = self.routes[-1] if self.routes else None
        if last is None or last.name != DEFAULT_ROUTE or not last.match.is_empty:
            raise ValueError(f'the last route must be "{DEFAULT_ROUTE}" with no match')


@dataclass(frozen=True, slots=True)
class RouteDecision:
    route: Route
    index: int  # position in the table, from 0
    reason: str
    stt_model: str  # the route's model, or the one chosen for this caller
    # Why each route before it was passed over: 'spanish: attributes.lang == es not met'
    # (the first condition that failed; configured values only, like the reason).
    passed_over: tuple[str, ...] = ()


def route_for(
    caller: Caller, table: RouteTable, directory: Mapping[str, str] | None = None
) -> RouteDecision:
    """The first route whose conditions all hold for this caller (and directory entry)."""
    last = len(table.routes) - 1
    passed_over: list[str] = []
    for index, route in enumerate(table.routes):
        met = conditions(route.match)
        if index < last:
            failed = next(((p, e) for p, e in met if not holds(p, e, caller, directory)), None)
            if failed is not None:
                passed_over.append(f"{route.name}: {describe(*failed)} not met")
                continue
        if index == last:
            why = f" ({'; '.join(passed_over)})" if passed_over else ""
            reason = f"no route matched{why}; default route"
        else:
            reason = f'matched route "{route.name}": ' + (
                ", ".join(describe(p, e) for p, e in met) or "no conditions"
            )
        model = stt_model_for(route, caller)
        return RouteDecision(route, index, reason, model, tuple(passed_over))
    raise AssertionError("unreachable: RouteTable guarantees a default route")


def stt_model_for(route: Route, caller: Caller) -> str:
    if route.stt_model:
        return route.stt_model
    english = route.language.lower().startswith("en")
    return PHONE_STT_MODEL if caller.is_phone_call and english else GENERAL_STT_MODEL


def conditions(match: Match) -> tuple[tuple[str, Expected], ...]:
    """The set conditions as (path, expected) pairs, in the order of the file format.

    Paths are field names, or ``attributes.<name>`` / ``directory.<field>``.
    """
    return tuple(_conditions(match))


def _conditions(m: Match) -> Iterator[tuple[str, Expected]]:
    plain: tuple[tuple[str, Expected | None], ...] = (
        ("kind", m.kind),
        ("called_number", m.called_number),
        ("caller_number", m.caller_number),
        ("caller_prefix", m.caller_prefix),
        ("caller_region", m.caller_region),
        ("trunk_id", m.trunk_id),
        ("rule_id", m.rule_id),
        ("number_hidden", m.number_hidden),
    )
    yield from ((path, value) for path, value in plain if value is not None)
    yield from ((f"attributes.{k}", v) for k, v in m.attributes.items())
    yield from ((f"directory.{k}", v) for k, v in m.directory.items())


def holds(
    path: str, expected: Expected, caller: Caller, directory: Mapping[str, str] | None
) -> bool:
    """Whether one condition holds. Never raises, whatever the caller's values are."""
    if isinstance(expected, bool):
        return caller.number_hidden == expected  # the only boolean condition
    if path == "caller_prefix":
        number = caller.phone_number or ""
        return bool(E164.fullmatch(number)) and number.startswith(expected)
    if path == "caller_region":
        return region_of(caller.phone_number) in expected
    return _value(path, caller, directory) in expected


def _value(path: str, caller: Caller, directory: Mapping[str, str] | None) -> str | None:
    group, _, name = path.partition(".")
    if group == "attributes":
        return caller.custom.get(name)
    if group == "directory":
        return directory.get(name) if directory is not None else None
    fields: dict[str, str | None] = {
        "kind": caller.kind,
        "called_number": caller.called_number,
        "caller_number": caller.phone_number,
        "trunk_id": caller.trunk_id,
        "rule_id": caller.rule_id,
    }
    return fields[path]


def describe(path: str, expected: Expected) -> str:
    """One condition as reason text: ``kind == sip`` or ``attributes.lang in ["es","fr"]``."""
    if isinstance(expected, bool):
        return f"{path} == {str(expected).lower()}"
    if len(expected) == 1:
        return f"{path} == {expected[0]}"
    return f"{path} in [" + ",".join(f'"{v}"' for v in expected) + "]"
