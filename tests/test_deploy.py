"""The deployment examples (deploy/): they parse, and what they give switchboard's
containers is what the settings reader knows and accepts, so an example cannot drift into
a variable nobody reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from switchboard.config.settings import ENV_VARS, load_settings
from switchboard.guardian.config import load_guardian_config

pytestmark = pytest.mark.unit

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
KNOWN = {v.name for v in ENV_VARS}
# ${NAME}, ${NAME:-default}, ${NAME:?error}: Compose's interpolation.
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?][^}]*)?\}")
# What an operator's .env would hold, for the check that the values are accepted.
OPERATOR = {
    "LIVEKIT_API_KEY": "APIexample",
    "LIVEKIT_API_SECRET": "a-secret-of-at-least-thirty-two-characters",
    "DATABASE_URL": "postgresql://switchboard:pw@postgres:5432/switchboard",
    "OPENAI_API_KEY": "",
    "DEEPGRAM_API_KEY": "",
}


def _interpolate(value: str) -> str:
    return _REFERENCE.sub(lambda m: OPERATOR[m[1]], value)


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _ours(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services that run switchboard's image (the agent and the guardian)."""
    return {
        name: service
        for name, service in compose["services"].items()
        if service.get("image") == "switchboard:latest"
    }


def test_the_compose_file_runs_workers_and_guardians_beside_a_livekit_cluster() -> None:
    compose = _compose()
    ours = _ours(compose)
    assert set(ours) == {"agent", "guardian"}
    assert ours["guardian"]["command"] == ["switchboard", "guardian"]
    nodes = [n for n, s in compose["services"].items() if "livekit-server" in s.get("image", "")]
    assert len(nodes) == 2
    config = yaml.safe_load(compose["services"]["livekit-1"]["environment"]["LIVEKIT_CONFIG"])
    assert config["redis"]["address"] == "redis:6379"  # one Redis: one cluster
    assert config["webhook"]["urls"] == ["http://guardian:8090/webhook"]


@pytest.mark.parametrize("service", ["agent", "guardian"])
def test_the_compose_file_gives_our_containers_only_settings_we_read(service: str) -> None:
    environment = _ours(_compose())[service]["environment"]
    assert set(environment) <= KNOWN, set(environment) - KNOWN
    referenced = {m[1] for v in environment.values() for m in _REFERENCE.finditer(str(v))}
    assert referenced <= KNOWN, referenced - KNOWN
    env = {k: _interpolate(str(v)) for k, v in environment.items()}
    load_settings(env)  # raises ConfigError, naming every problem
    if service == "guardian":
        config = load_guardian_config(env)
        assert config.database_url == OPERATOR["DATABASE_URL"]  # where the leases are
        assert config.bind == "0.0.0.0"


def _manifests() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def test_the_kubernetes_manifests_give_our_containers_only_settings_we_read() -> None:
    docs = _manifests()
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert {
        ("ConfigMap", "switchboard"),
        ("Secret", "switchboard"),
        ("Deployment", "switchboard-agent"),
        ("Deployment", "switchboard-guardian"),
        ("Service", "switchboard-guardian"),
    } <= kinds
    config = next(d["data"] for d in docs if d["kind"] == "ConfigMap")
    secret = next(d["stringData"] for d in docs if d["kind"] == "Secret")
    assert set(config) <= KNOWN and set(secret) <= KNOWN, (set(config) | set(secret)) - KNOWN
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert names <= KNOWN, names - KNOWN
            refs = {next(iter(r.values()))["name"] for r in container["envFrom"]}
            assert refs == {"switchboard"}
    env = {**config, **secret}
    load_settings(env)
    guardian = load_guardian_config(env)
    assert guardian.port == 8090
