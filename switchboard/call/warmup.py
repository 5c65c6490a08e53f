"""What the first call of a process would pay once, paid while the process is idle.

Each call runs in a job process started ahead of it (``switchboard.worker``). What such a
process builds or loads on first use is paid on the call's event loop, on the way to the
answer: the framework's loop monitor saw 50-150 ms blocks there, between the caller being
identified and the session starting, each of them a first use. The modules are imported
once in the forkserver (``worker.PRELOAD_MODULES``); what is built per process is built
here, from the prewarm, before the call comes:

- the HTTP client every OpenAI-compatible model shares, and the SDK's resources on it
  (``providers.warm_providers``);
- the TLS context of the framework's HTTP session (``ctx.api``, which the call reads as
  it prepares): building it parses the whole CA bundle, 40-100 ms;
- the docstring parser's patterns, compiled at the first function tool a call builds
  (``tools_for``, before the first words);
- the framework's hyphenation patterns, built at the first word its transcript
  synchronizer times, as the greeting plays.

Nothing here touches the network or builds a call's own state: a provider that is down
does not stop a process from starting, and nothing from one call reaches another.
"""

from __future__ import annotations

from livekit.agents import llm
from livekit.agents.tokenize import basic
from livekit.agents.utils import http_context

from switchboard.call.providers import warm_providers
from switchboard.config.settings import AiSettings


def warm_process(ai: AiSettings) -> None:
    """Build, before the call, what its process would otherwise build during it."""
    warm_providers(ai)
    # Private: the framework caches the context per trust configuration (functools.cache)
    # and every http_session() of the process then shares it. Looked up, not assumed: a
    # livekit-agents without it costs the call its first TLS context, never the process.
    ssl_context = getattr(http_context, "_create_ssl_context", None)
    if callable(ssl_context):
        ssl_context()
    llm.function_tool(_warm_tool)
    basic.hyphenate_word("warm")


async def _warm_tool(reason: str) -> None:
    """Never offered to a model: it compiles the docstring parser's patterns.

    Args:
        reason: why
    """
