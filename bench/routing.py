"""`python -m bench.routing`: what routing and prompt rendering cost per call (µs)."""

from __future__ import annotations

import json
import timeit
from pathlib import Path

from switchboard.call.context import instructions_for
from switchboard.caller import caller_from_participant
from switchboard.config.prompts import load_prompts
from switchboard.config.routes import load_routes
from switchboard.routing import route_for

OUT = Path(__file__).resolve().parent / "out"
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    table = load_routes(ROOT / "routes.toml")
    callers = [
        caller_from_participant("sip", "a", {"sip.phoneNumber": "+442071234567", "lang": "es"}),
        caller_from_participant("sip", "b", {"sip.phoneNumber": "+15105550123"}),
        caller_from_participant("standard", "c", {}),
    ]
    n = 2000
    route_us = timeit.timeit(lambda: [route_for(c, table) for c in callers], number=n)
    route_us = route_us / (n * len(callers)) * 1e6
    routes = [route_for(c, table).route for c in callers]
    prompts = load_prompts()
    render_us = timeit.timeit(
        lambda: [instructions_for(c, r, prompts) for c, r in zip(callers, routes, strict=True)],
        number=n,
    )
    render_us = render_us / (n * len(callers)) * 1e6
    figures = {"route_for_us": round(route_us, 1), "instructions_for_us": round(render_us, 1)}
    print(f"routing per call: {route_us:.1f} µs; prompt rendering per call: {render_us:.1f} µs")
    OUT.mkdir(exist_ok=True)
    (OUT / "routing.json").write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
