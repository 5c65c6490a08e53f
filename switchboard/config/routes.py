"""Read routes.toml into a RouteTable, reporting every problem in one error.

Each problem names the file, the route (index and name) and the field, and says how to
fix it, because the person reading it is editing a TOML file, not Python. Typed reads
are the shared ``reader``, single-value checks ``fields``, reachability ``shadowing``.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import fields
from pathlib import Path
from typing import Any

from switchboard.config.fields import (
    ITEM_CHECKS,
    LANGUAGE,
    NAME,
    PIN_ATTEMPTS,
    PIN_ENV,
    PROMPT,
    SIP_FIELDS,
    checked,
)
from switchboard.config.prompts import DEFAULT_DIR
from switchboard.config.reader import Problems, Table, parse_toml, suggest
from switchboard.config.shadowing import covers
from switchboard.config.turn_taking import read_turn
from switchboard.menu import (
    DEFAULT_TIMEOUT_S,
    MENU_KEYS,
    REPEAT_KEY,
    TIMEOUT_RANGE,
    Menu,
    words_for,
)
from switchboard.routing import (
    DEFAULT_PIN_ATTEMPTS,
    DEFAULT_PIN_PROMPT,
    DEFAULT_ROUTE,
    KNOWN_TOOLS,
    PHONE_STT_MODEL,
    Match,
    Route,
    RouteTable,
    conditions,
)

# The file format mirrors the dataclasses: one TOML key per field.
ROUTE_KEYS = tuple(f.name for f in fields(Route))
MATCH_KEYS = tuple(f.name for f in fields(Match))

# Said aloud at every call's start: long enough for any greeting, short of a text that
# would hold the line (and the speech bill) for minutes.
SPOKEN_MAX = 1000  # characters
_DEFAULT_FIX = f'end the file with a catch-all route: [[route]] name = "{DEFAULT_ROUTE}"'


SUBJECT = "the route table"


def load_routes(path: str | Path, prompts: Path = DEFAULT_DIR) -> RouteTable:
    """Read and check a routes file; prompt names must exist as ``<prompts>/<name>.md``.

    Raises FileNotFoundError for a missing file, ConfigError for a bad one.
    """
    text = Path(path).read_text(encoding="utf-8")
    known = frozenset(p.stem for p in prompts.glob("*.md")) if prompts.is_dir() else frozenset()
    return parse_routes(text, source=str(path), known_prompts=known, prompts_label=str(prompts))


def parse_routes(
    text: str, *, source: str, known_prompts: Collection[str], prompts_label: str = "prompts"
) -> RouteTable:
    """Pure core of load_routes: the file's text, the prompt names that exist and the
    prompts folder as error messages should name it."""
    problems = Problems(source)
    doc = parse_toml(problems, text, SUBJECT)
    Table(problems, "the file", doc).keys(("route",))
    tables = doc.get("route", [])
    if not isinstance(tables, list):
        problems.add("the file", "route", "is a single table", "write [[route]], not [route]")
        tables = []
    routes = [
        read_route(problems, i, t, known_prompts, prompts_label) for i, t in enumerate(tables)
    ]
    _check_table(problems, tables, routes)
    problems.check(SUBJECT)
    return RouteTable(tuple(r for r in routes if r is not None), source=source)


def read_route(
    problems: Problems, index: int, data: Any, known_prompts: Collection[str], prompts_label: str
) -> Route | None:
    """The Route of table ``index`` (from 0), or None after recording its problems."""
    where = _where(index, None)
    if not isinstance(data, dict):
        problems.add(where, None, "is not a table", 'write [[route]] then name = "..."')
        return None
    r = Table(problems, where, data)
    name = r.text("name", "")
    if name is not None:
        r.where = _where(index, name)
        if not NAME.fullmatch(name):
            r.fail("name", f"{name!r} has unsupported characters", "use letters, digits, . _ -")
    r.keys(ROUTE_KEYS)
    match = _match(r, data.get("match", {}))
    language = r.text("language", "en-US")
    if language is not None and not LANGUAGE.fullmatch(language):
        r.fail("language", f"{language!r} is not a BCP-47 tag", 'write e.g. "en-US" or "es"')
    stt = r.text("stt_model")
    if stt == PHONE_STT_MODEL and language and not language.lower().startswith("en"):
        fix = "remove stt_model to let the code pick one (nova-3), or set language to English"
        r.fail("stt_model", f"{stt} is English-only but language is {language!r}", fix)
    prompt = r.text("prompt", "default")
    if prompt is not None and (not PROMPT.fullmatch(prompt) or prompt not in known_prompts):
        names = sorted(known_prompts)
        fix = f"{suggest(prompt, names)}create {prompts_label}/{prompt}.md, or use one of: "
        r.fail("prompt", f"no prompt file {prompt}.md", fix + ", ".join(names))
    tools = r.strings("tools") if "tools" in data else ("end_call",)
    for tool in tools or ():
        if tool not in KNOWN_TOOLS:
            fix = f"{suggest(tool, KNOWN_TOOLS)}known tools: {', '.join(KNOWN_TOOLS)}"
            r.fail("tools", f"unknown tool {tool!r}", fix)
    destinations = r.strings("transfer_destinations")
    if destinations and tools is not None and "transfer" not in tools:
        fix = 'add "transfer" to tools, or remove transfer_destinations'
        r.fail("transfer_destinations", "is set but the transfer tool is not enabled", fix)
    pin_env, pin_attempts, pin_prompt = _pin(r, data)
    caller_selected = r.flag("allow_caller_selected_pin")
    if match is not None:
        _check_pin_selection(r, match, pin_env, caller_selected)
    greeting = r.text("greeting")
    for key, said in (("greeting", greeting), ("pin_prompt", pin_prompt)):
        if said is not None and len(said) > SPOKEN_MAX:
            problem = f"is {len(said)} characters long; at most {SPOKEN_MAX}"
            r.fail(key, problem, "shorten it: it is said aloud, in full, before anything else")
    menu = _menu(r, data["menu"], language or "en-US") if "menu" in data else None
    record, consent = _recording(r, data)
    route = Route(
        name=name or "",
        match=match or Match(),
        stt_model=stt,
        language=language or "en-US",
        prompt=prompt or "default",
        greeting=greeting,
        tools=tools or (),
        dial_policy=r.text("dial_policy"),
        transfer_destinations=destinations or (),
        pin_env=pin_env,
        pin_attempts=pin_attempts,
        pin_prompt=pin_prompt or DEFAULT_PIN_PROMPT,
        allow_caller_selected_pin=caller_selected,
        turn=read_turn(r, data.get("turn", {})),
        menu=menu,
        record=record,
        record_consent=consent,
    )
    return route if r.ok and name else None


def _pin(r: Table, data: dict[str, Any]) -> tuple[str | None, int, str | None]:
    """pin_env, pin_attempts, pin_prompt. Only the variable's name is checked here: the
    file is checked where the PIN is not known (CI, a laptop); the worker checks that the
    variable is set when it starts (switchboard.config.pins)."""
    env = data.get("pin_env")
    if env is not None and not (isinstance(env, str) and PIN_ENV.fullmatch(env)):
        # The value is not repeated: someone may have written the PIN itself here.
        fix = "write the name of an environment variable in capitals ending in _PIN, e.g. "
        fix += 'pin_env = "SUPPORT_LINE_PIN"; the PIN itself goes in that variable, never here'
        r.fail("pin_env", "is not the name of a PIN variable", fix)
        env = None
    attempts = r.integer("pin_attempts", DEFAULT_PIN_ATTEMPTS, *PIN_ATTEMPTS)
    prompt = r.text("pin_prompt")
    for key in ("pin_attempts", "pin_prompt"):
        if key in data and "pin_env" not in data:
            fix = 'add pin_env = "<NAME>_PIN", or remove it'
            r.fail(key, "is set but pin_env is not, so no PIN is asked for", fix)
    return env, attempts, prompt


def _check_pin_selection(r: Table, match: Match, pin_env: str | None, allowed: bool) -> None:
    """A PIN route must not be chosen only by values the caller sets (custom attributes,
    i.e. X- headers): leaving the header out skips the route, and its PIN with it."""
    if allowed and pin_env is None:
        fix = 'add pin_env = "<NAME>_PIN", or remove it'
        r.fail("allow_caller_selected_pin", "is set but pin_env is not", fix)
    met = conditions(match)
    if pin_env is None or allowed or not met:
        return
    if all(path.startswith("attributes.") for path, _ in met):
        r.fail(
            "match",
            "selects this PIN route only by custom attributes, which the caller sets (SIP "
            "X- headers): a caller who leaves them out skips the route and its PIN",
            "add a condition the caller cannot set (called_number, trunk_id, rule_id), or, "
            "if every later route is safe for anyone, set allow_caller_selected_pin = true",
        )


MENU_FIELDS = ("keys", "timeout", "prompt")


def _menu(r: Table, data: Any, language: str) -> Menu | None:
    """[route.menu]: keys naming destinations (policy.toml's, checked with the policy)."""
    if not isinstance(data, dict):
        r.fail("menu", "expected a table", 'write [route.menu] then keys = { "1" = "sales" }')
        return None
    m = r.within("menu", data)
    m.keys(MENU_FIELDS)
    keys = m.pairs("keys")
    example = 'keys = { "1" = "sales", "2" = "support" }'
    if not keys:
        m.fail("keys", "no keys: the menu would offer nothing", f"write {example}")
    for key in keys:
        if key == REPEAT_KEY:
            m.fail(f"keys.{key}", "0 is the menu's own key: it repeats the menu", "use 1-9")
        elif len(key) != 1 or key not in MENU_KEYS:
            m.fail(f"keys.{key}", f"{key!r} is not one keypad key", f"use one of {MENU_KEYS}")
    low, high = TIMEOUT_RANGE
    timeout = m.integer("timeout", DEFAULT_TIMEOUT_S, low, high)
    prompt = m.text("prompt")
    if prompt is None and words_for(language) is None:
        fix = 'write menu.prompt in that language, e.g. the options and "0" to repeat'
        m.fail("prompt", f"no built-in menu words for language {language!r}", fix)
    return Menu(keys=tuple(keys.items()), timeout=timeout, prompt=prompt) if m.ok else None


def _recording(r: Table, data: dict[str, Any]) -> tuple[bool, str | None]:
    """record, record_consent: a consent line on a route that records nothing would tell
    callers something untrue."""
    record = r.flag("record")
    consent = r.text("record_consent")
    if consent is not None and not record:
        r.fail("record_consent", "is set but record is not true", "add record = true, or remove it")
    return record, consent


def _match(r: Table, data: Any) -> Match | None:
    if not isinstance(data, dict):
        r.fail("match", "expected a table", 'write [route.match] or match = { kind = "sip" }')
        return None
    m = r.within("match", data)
    m.keys(MATCH_KEYS)
    hidden = m.flag("number_hidden") if "number_hidden" in data else None
    attributes = m.value_lists("attributes")
    for key in attributes:
        if key.startswith(("sip.", "lk.")):
            use = SIP_FIELDS.get(key)
            fix = f"use match.{use}" if use else "match only the caller's custom attributes"
            m.fail(f"attributes.{key}", "is set by LiveKit, not a custom attribute", fix)
    values = {k: checked(m, k) for k in ITEM_CHECKS}
    return Match(
        **values, number_hidden=hidden, attributes=attributes, directory=m.value_lists("directory")
    )


def _check_table(problems: Problems, tables: list[Any], routes: list[Route | None]) -> None:
    names = [t.get("name") if isinstance(t, dict) else None for t in tables]
    where = [_where(i, n) for i, n in enumerate(names)]
    for i, name in enumerate(names):
        if isinstance(name, str) and name in names[:i]:
            first = names.index(name)
            fix = f"give each route its own name (first use: {where[first]})"
            problems.add(where[i], "name", f'"{name}" is used twice', fix)
    defaults = [i for i, n in enumerate(names) if n == DEFAULT_ROUTE]
    if not defaults:
        problems.add("the file", None, "has no default route", _DEFAULT_FIX)
    for i in defaults:
        if i != len(names) - 1:
            fix = "move it to the end: it catches every call the routes above it do not"
            problems.add(where[i], None, "the default route is not the last one", fix)
        if isinstance(tables[i], dict) and "match" in tables[i]:
            fix = "remove its match table: the default route takes every remaining call"
            problems.add(where[i], "match", "the default route cannot have conditions", fix)
    _check_reachable(problems, where, routes)


def _check_reachable(problems: Problems, where: list[str], routes: list[Route | None]) -> None:
    """Routes that can never run: after a catch-all, or covered by an earlier route."""
    checked = [(i, r) for i, r in enumerate(routes) if r is not None and r.name != DEFAULT_ROUTE]
    shadowed: set[int] = set()
    for i, route in checked:
        if route.match.is_empty:
            fix = 'add conditions in [route.match], or rename it "default" and put it last'
            problems.add(where[i], "match", "has no conditions, so later routes never run", fix)
            shadowed.add(i)  # already reported: do not also blame it on earlier routes
    for j, later in checked:
        for i, earlier in checked:
            if i >= j or j in shadowed or earlier.match.is_empty:
                continue
            if covers(earlier.match, later.match):
                shadowed.add(j)
                problems.add(
                    where[j],
                    "match",
                    f"is unreachable: every call it matches is taken first by {where[i]}, "
                    "whose conditions are a subset of these, each equal or broader",
                    f'move "{later.name}" above "{earlier.name}", or remove it',
                )


def _where(index: int, name: object) -> str:
    return f"[[route]] #{index + 1}" + (f' ("{name}")' if isinstance(name, str) and name else "")
