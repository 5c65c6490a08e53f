"""Keyless text in the route's language: ``keyless_<language>.md`` when there is one,
else the English text, with a warning at start naming the routes that would hear it."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.config.prompts import load_prompts, localized, untranslated
from switchboard.config.routes import load_routes
from switchboard.config.startup import keyless_language_warnings
from switchboard.routing import Route, RouteTable

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = load_prompts()


def test_a_spanish_route_hears_spanish() -> None:
    text = localized(SHIPPED, "keyless", "es-MX")
    assert text == (ROOT / "prompts/keyless_es.md").read_text(encoding="utf-8").strip()
    assert "asistente" in text
    assert localized(SHIPPED, "keyless", "en-US") == SHIPPED["keyless"]


def test_a_language_without_its_text_falls_back_to_english() -> None:
    assert localized(SHIPPED, "keyless", "fr") == SHIPPED["keyless"]
    assert untranslated(SHIPPED, "keyless", ["fr-CA", "en-GB", "es", "de", "fr"]) == ["de", "fr"]


def test_every_shipped_route_has_keyless_text_in_its_language() -> None:
    routes = load_routes(ROOT / "routes.toml")
    assert keyless_language_warnings(SHIPPED, routes) == []


def test_the_start_warns_of_routes_that_would_hear_english(tmp_path: Path) -> None:
    (tmp_path / "keyless.md").write_text("Sorry, no assistant today.")
    (tmp_path / "keyless_es.md").write_text("Lo siento.")
    routes = RouteTable(
        (
            Route("quebec", language="fr-CA"),
            Route("paris", language="fr"),
            Route("madrid", language="es"),
            Route("berlin", language="de"),
            Route("default"),
        )
    )
    warnings = keyless_language_warnings(load_prompts(tmp_path), routes)
    assert warnings == [
        f"keyless: no {tmp_path.name}/keyless_de.md, so callers on route berlin (language de) "
        "hear the en text; add that file with the text in their language",
        f"keyless: no {tmp_path.name}/keyless_fr.md, so callers on routes quebec, paris "
        "(language fr) hear the en text; add that file with the text in their language",
    ]
