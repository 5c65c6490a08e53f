"""Live tests: `switchboard provision` against a real livekit-server (+ redis).

The SIP *API* (trunks, dispatch rules) lives in livekit-server itself and stores objects
in redis (without redis it answers "sip not connected (redis required)"); no SIP service
is needed for provisioning, so this fixture starts just redis and livekit-server. The
real lab fixture will replace `livekit_api_server` later.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from livekit.api import LiveKitAPI
from livekit.protocol.sip import (
    CreateSIPDispatchRuleRequest,
    CreateSIPInboundTrunkRequest,
    CreateSIPOutboundTrunkRequest,
    DeleteSIPDispatchRuleRequest,
    DeleteSIPTrunkRequest,
    ListSIPDispatchRuleRequest,
    ListSIPInboundTrunkRequest,
    ListSIPOutboundTrunkRequest,
    SIPDispatchRule,
    SIPDispatchRuleIndividual,
    SIPDispatchRuleInfo,
    SIPInboundTrunkInfo,
    SIPOutboundTrunkInfo,
)

from lab.stack import BIN
from switchboard.cli import provision as cli_provision
from switchboard.telephony.config import (
    TelephonyConfig,
    load_config,
)
from switchboard.telephony.plan import (
    Action,
)
from switchboard.telephony.provision import ProvisionError, ProvisionResult, provision

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
CONFIG_FILE = ROOT / "tests/data/telephony-one-number.toml"
SERVER_BIN = BIN / "livekit-server"
REDIS_PORT, HTTP_PORT = 16379, 17880
API_KEY, API_SECRET = "devkey", "switchboard-lab-secret-0123456789abcdef"
CONFIG_YAML = f"""\
port: {HTTP_PORT}
bind_addresses: [127.0.0.1]
keys:
  {API_KEY}: {API_SECRET}
redis:
  address: 127.0.0.1:{REDIS_PORT}
rtc:
  tcp_port: 17881
  udp_port: 17882
  use_external_ip: false
"""


@dataclass(frozen=True)
class LiveKitServer:
    url: str
    api_key: str
    api_secret: str


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _wait_until(ready: object, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Poll `ready()` until it is true; fail early if the process died, or at a deadline."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.05)  # poll interval, not synchronisation: readiness is checked above
    pytest.fail(f"{what} not ready after 30s:\n{log.read_text()[-3000:]}")


def _redis_ready() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _http_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/", timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def livekit_api_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveKitServer]:
    if not SERVER_BIN.exists() or shutil.which("redis-server") is None:
        pytest.fail(f"{SERVER_BIN} or redis-server is missing: run lab/setup.sh")
    for port in (REDIS_PORT, HTTP_PORT):
        if not _port_free(port):
            pytest.fail(f"127.0.0.1:{port} is already in use; stop whatever listens there")
    workdir = tmp_path_factory.mktemp("livekit")
    (workdir / "livekit.yaml").write_text(CONFIG_YAML)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        redis_log = workdir / "redis.log"
        redis_cmd = ["redis-server", "--port", str(REDIS_PORT), "--bind", "127.0.0.1"]
        redis_cmd += ["--save", "", "--appendonly", "no"]
        with redis_log.open("wb") as out:
            procs.append(subprocess.Popen(redis_cmd, stdout=out, stderr=subprocess.STDOUT))
        _wait_until(_redis_ready, procs[-1], "redis-server", redis_log)
        server_log = workdir / "livekit.log"
        with server_log.open("wb") as out:
            cmd = [str(SERVER_BIN), "--config", str(workdir / "livekit.yaml")]
            procs.append(subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT))
        _wait_until(_http_ready, procs[-1], "livekit-server", server_log)
        yield LiveKitServer(f"http://127.0.0.1:{HTTP_PORT}", API_KEY, API_SECRET)
    finally:
        for proc in reversed(procs):
            _stop(proc)


def lab_config() -> TelephonyConfig:
    return load_config(CONFIG_FILE, env={})  # the file's defaults


async def run(
    server: LiveKitServer, config: TelephonyConfig, **kw: bool
) -> tuple[ProvisionResult, str]:
    out = io.StringIO()
    result = await provision(
        config, url=server.url, api_key=server.api_key, api_secret=server.api_secret, out=out, **kw
    )
    return result, out.getvalue()


def api(server: LiveKitServer) -> LiveKitAPI:
    return LiveKitAPI(server.url, server.api_key, server.api_secret)


async def snapshot(server: LiveKitServer) -> tuple[list[str], list[str], list[str]]:
    """Every SIP object on the server, serialised, to prove that nothing changed."""
    async with api(server) as lk:
        ins = await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())
        outs = await lk.sip.list_outbound_trunk(ListSIPOutboundTrunkRequest())
        rules = await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())
    return (
        sorted(str(x) for x in ins.items),
        sorted(str(x) for x in outs.items),
        sorted(str(x) for x in rules.items),
    )


@pytest.fixture
async def server(livekit_api_server: LiveKitServer) -> LiveKitServer:
    """The shared server, emptied of SIP objects so every test starts from scratch."""
    async with api(livekit_api_server) as lk:
        for r in (await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items:
            req = DeleteSIPDispatchRuleRequest(sip_dispatch_rule_id=r.sip_dispatch_rule_id)
            await lk.sip.delete_dispatch_rule(req)
        ins = (await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())).items
        outs = (await lk.sip.list_outbound_trunk(ListSIPOutboundTrunkRequest())).items
        for trunk_id in [t.sip_trunk_id for t in ins] + [t.sip_trunk_id for t in outs]:
            await lk.sip.delete_trunk(DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))
    return livekit_api_server


async def test_provision_lab_twice_is_idempotent(server: LiveKitServer) -> None:
    first, _ = await run(server, lab_config())
    assert {c.action for c in first.changes} == {Action.CREATE}
    trunk_id = first.inbound_trunk_ids["lab-inbound"]
    rule_id = first.dispatch_rule_ids["lab-inbound-rule"]
    callee_id = first.outbound_trunk_ids["lab-callee"]
    assert trunk_id.startswith("ST_") and rule_id.startswith("SDR_") and callee_id.startswith("ST_")

    async with api(server) as lk:
        (trunk,) = (await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())).items
        (rule,) = (await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items
        (callee,) = (await lk.sip.list_outbound_trunk(ListSIPOutboundTrunkRequest())).items
    assert dict(trunk.headers_to_attributes) == {"X-Customer-Id": "customer_id", "X-Lang": "lang"}
    assert sorted(trunk.allowed_addresses) == ["10.0.0.0/8", "127.0.0.0/8"]
    assert list(rule.trunk_ids) == [trunk_id]
    assert rule.rule.dispatch_rule_individual.room_prefix == "call-"
    assert [a.agent_name for a in rule.room_config.agents] == ["switchboard-lab"]
    assert (callee.address, list(callee.numbers)) == ("127.0.0.1:5070", ["+15105550199"])

    before = await snapshot(server)
    second, text = await run(server, lab_config())
    assert {c.action for c in second.changes} == {Action.UNCHANGED}
    assert "0 to create, 0 to update, 0 to delete, 3 unchanged" in text
    assert (second.inbound_trunk_ids, second.dispatch_rule_ids, second.outbound_trunk_ids) == (
        first.inbound_trunk_ids,
        first.dispatch_rule_ids,
        first.outbound_trunk_ids,
    )
    assert await snapshot(server) == before


async def test_changed_field_is_updated_in_place(server: LiveKitServer) -> None:
    first, _ = await run(server, lab_config())
    cfg = lab_config()
    trunk = replace(cfg.inbound_trunks[0], headers_to_attributes=(("X-Account", "account"),))
    changed = replace(cfg, inbound_trunks=(trunk,))

    result, text = await run(server, changed)
    updates = [c for c in result.changes if c.action is Action.UPDATE]
    assert [(c.name, [d.field for d in c.diffs]) for c in updates] == [
        ("lab-inbound", ["headers_to_attributes"])
    ]
    assert "update in place" in text
    assert result.inbound_trunk_ids == first.inbound_trunk_ids  # same object, same ID
    async with api(server) as lk:
        (stored,) = (await lk.sip.list_inbound_trunk(ListSIPInboundTrunkRequest())).items
        (rule,) = (await lk.sip.list_dispatch_rule(ListSIPDispatchRuleRequest())).items
    assert dict(stored.headers_to_attributes) == {"X-Account": "account"}
    assert list(rule.trunk_ids) == [stored.sip_trunk_id]  # the rule still points at it

    again, _ = await run(server, changed)
    assert {c.action for c in again.changes} == {Action.UNCHANGED}


async def test_dry_run_changes_nothing(server: LiveKitServer) -> None:
    result, text = await run(server, lab_config(), dry_run=True)
    assert [c.action for c in result.changes] == [Action.CREATE] * 3
    assert "dry run" in text and "3 to create" in text
    assert not result.inbound_trunk_ids and not result.dispatch_rule_ids
    assert await snapshot(server) == ([], [], [])

    await run(server, lab_config())
    before = await snapshot(server)
    cfg = lab_config()
    renamed = replace(cfg, dispatch_rules=(replace(cfg.dispatch_rules[0], room_prefix="x-"),))
    result, _ = await run(server, renamed, dry_run=True, prune=True)
    assert [c.name for c in result.changes if c.action is Action.UPDATE] == ["lab-inbound-rule"]
    assert await snapshot(server) == before


async def test_prune_removes_only_unmanaged_objects(server: LiveKitServer) -> None:
    first, _ = await run(server, lab_config())
    async with api(server) as lk:
        stray_trunk = await lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(
                trunk=SIPInboundTrunkInfo(name="stray", numbers=["+15105550177"])
            )
        )
        await lk.sip.create_outbound_trunk(
            CreateSIPOutboundTrunkRequest(
                trunk=SIPOutboundTrunkInfo(name="stray", address="h:5060", numbers=["+15105550178"])
            )
        )
        await lk.sip.create_dispatch_rule(
            CreateSIPDispatchRuleRequest(
                dispatch_rule=SIPDispatchRuleInfo(
                    name="stray",
                    trunk_ids=[stray_trunk.sip_trunk_id],
                    rule=SIPDispatchRule(
                        dispatch_rule_individual=SIPDispatchRuleIndividual(room_prefix="s-")
                    ),
                )
            )
        )

    kept, text = await run(server, lab_config())
    assert sum(c.action is Action.UNMANAGED for c in kept.changes) == 3
    assert "unmanaged, left alone" in text
    assert all(len(kind) == 2 for kind in await snapshot(server))

    pruned, text = await run(server, lab_config(), prune=True)
    assert sorted((c.kind.value, c.name) for c in pruned.changes if c.action is Action.DELETE) == [
        ("dispatch_rule", "stray"),
        ("inbound_trunk", "stray"),
        ("outbound_trunk", "stray"),
    ]
    assert all(len(kind) == 1 for kind in await snapshot(server))
    assert pruned.inbound_trunk_ids == first.inbound_trunk_ids
    assert pruned.dispatch_rule_ids == first.dispatch_rule_ids


async def test_server_refusal_names_the_object(server: LiveKitServer) -> None:
    async with api(server) as lk:  # an unmanaged trunk already owns the lab number
        await lk.sip.create_inbound_trunk(
            CreateSIPInboundTrunkRequest(
                trunk=SIPInboundTrunkInfo(name="squatter", numbers=["+15105550100"])
            )
        )
    with pytest.raises(ProvisionError) as info:
        await run(server, lab_config())
    message = str(info.value)
    assert "create inbound_trunk 'lab-inbound' failed: the server said invalid_argument" in message
    assert "Conflicting inbound SIP Trunks" in message


def test_cli_json_prints_ids(
    server: LiveKitServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LIVEKIT_URL", server.url)
    monkeypatch.setenv("LIVEKIT_API_KEY", server.api_key)
    monkeypatch.setenv("LIVEKIT_API_SECRET", server.api_secret)
    for name in ("LAB_AGENT_NAME", "LAB_SIP_CALLEE_ADDR"):
        monkeypatch.delenv(name, raising=False)
    parser = argparse.ArgumentParser()
    cli_provision.add_parser(parser.add_subparsers())
    args = parser.parse_args(["provision", "--file", str(CONFIG_FILE), "--json"])
    assert args.func(args) == 0
    captured = capsys.readouterr()
    ids = json.loads(captured.out)
    assert set(ids["inbound_trunks"]) == {"lab-inbound"}
    assert set(ids["dispatch_rules"]) == {"lab-inbound-rule"}
    assert set(ids["outbound_trunks"]) == {"lab-callee"}
    assert "Plan for" in captured.err  # the plan goes to stderr so stdout stays JSON

    monkeypatch.setenv("LIVEKIT_API_SECRET", "wrong-secret-0123456789abcdef0123456789")
    assert args.func(args) == 1
    assert "HTTP 401" in capsys.readouterr().err
