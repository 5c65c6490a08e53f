"""The caller's context before the greeting: who they are in the directory, and the
agent the model plays, whose instructions carry everything from the caller's side as
quoted data. ``build_agent`` is the one way an agent is built: production, tests and
evals share it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from livekit.agents import NOT_GIVEN, Agent, llm

from switchboard.call.event_types import DirectoryLookup
from switchboard.call.events import EventLog
from switchboard.call.first_words import FirstWords
from switchboard.caller import Caller
from switchboard.config.prompts import Prompts, render_instructions
from switchboard.config.settings import Settings
from switchboard.data.db import Database
from switchboard.data.directory.entry import DirectoryEntry
from switchboard.data.directory.store import lookup
from switchboard.numbers import region_of
from switchboard.routing import Route


async def known_caller(
    db: Database, caller: Caller, settings: Settings, events: EventLog
) -> DirectoryEntry | None:
    """The directory's entry for this caller, within the lookup budget, or None."""
    if not caller.is_phone_call:
        return None
    found = await lookup(
        db,
        caller.phone_number,
        timeout_s=settings.data.directory_timeout,
        default_region=settings.calls.default_region,
    )
    elapsed_ms = round(found.elapsed_s * 1000, 1)
    events.emit(DirectoryLookup(status=found.status, failure=found.failure, elapsed_ms=elapsed_ms))
    return found.entry


def directory_fields(entry: DirectoryEntry | None) -> dict[str, str] | None:
    """A directory entry as the flat text fields routes can match on."""
    if entry is None:
        return None
    fields = {k: str(v) for k, v in entry.extra.items() if v is not None}
    for name in ("name", "account_id", "tier", "language"):
        if (value := getattr(entry, name)) is not None:
            fields[name] = str(value)
    return fields


def call_details(caller: Caller, route: Route) -> dict[str, object]:
    """What a prompt may know of the call (caller-side values: untrusted, quoted as data)."""
    return {
        "called_number": caller.called_number,
        "caller_region": region_of(caller.phone_number),
        "caller_number_hidden": caller.number_hidden,
        "language": route.language,
        "custom": dict(caller.custom),
    }


def instructions_for(
    caller: Caller, route: Route, prompts: Prompts, entry: DirectoryEntry | None = None
) -> str:
    """The route's prompt with the caller's context as quoted data."""
    details = call_details(caller, route)
    if entry is not None:
        details["known_caller"] = {
            "name": entry.name,
            "account_tier": entry.tier,
            "preferred_language": entry.language,
        }
    return render_instructions(prompts[route.prompt], details)


GREET = "Greet the caller briefly and offer your help."


class CallAgent(Agent):
    """The agent of one call. It greets from ``on_enter`` when it may, as the framework's
    own recipe does: the greeting is then prepared while the session finishes starting
    (and the SIP service answers), instead of only after."""

    def __init__(
        self,
        *,
        instructions: str,
        tools: Sequence[llm.Tool | llm.Toolset],
        greeting: str | None,
        greet_on_enter: bool,
        history: llm.ChatContext | None = None,
    ) -> None:
        super().__init__(
            instructions=instructions, tools=list(tools), chat_ctx=history or NOT_GIVEN
        )
        self._greeting = greeting
        self._greet_on_enter = greet_on_enter
        # Made before the session started (``call.first_words``): said as they are, once.
        self.first_words: FirstWords | None = None
        self._greeting_watch: asyncio.Task[None] | None = None

    @property
    def greeting(self) -> str | None:
        """The fixed words it greets with (the route's, or a resumed call's opening);
        None: the model makes them."""
        return self._greeting

    async def on_enter(self) -> None:
        if self._greet_on_enter:
            self.greet()

    def greet(self) -> None:
        """The words made before the session started, else the route's fixed greeting,
        else one the model makes."""
        if (words := self.first_words) is not None:
            self.first_words = None
            self.session.say(words.text, audio=words.audio)
            if words.ready_ms is None:  # still being made: should they fail, greet anew
                self._greeting_watch = asyncio.create_task(self._greet_if_unheard(words))
        elif self._greeting:
            self.session.say(self._greeting)
        else:
            self.session.generate_reply(instructions=GREET)

    async def _greet_if_unheard(self, words: FirstWords) -> None:
        if await words.made_nothing():
            with contextlib.suppress(RuntimeError):  # the session closed meanwhile
                self.session.generate_reply(instructions=GREET)


def build_agent(
    caller: Caller,
    route: Route,
    prompts: Prompts,
    entry: DirectoryEntry | None,
    tools: Sequence[llm.Tool | llm.Toolset] = (),
    *,
    greet_on_enter: bool = True,
    history: llm.ChatContext | None = None,
    opening: str | None = None,
) -> CallAgent:
    """The agent for one call: the route's instructions for this caller, its tools and
    greeting. ``greet_on_enter=False`` holds the greeting for ``greet()`` (after a PIN).
    A resumed call (``call.resume``) brings the conversation so far as ``history`` and
    says ``opening`` instead of the greeting."""
    return CallAgent(
        instructions=instructions_for(caller, route, prompts, entry),
        tools=tools,
        greeting=opening or route.greeting,
        greet_on_enter=greet_on_enter,
        history=history,
    )
