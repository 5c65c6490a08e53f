"""The local telephony lab: Redis, livekit-server, the LiveKit SIP service and one agent
worker, started in the lab's network namespace, probed under deadlines, provisioned
through ``switchboard provision``'s own code, and described in ``.lab/lab.env``.

Options: more agent workers (each its own process and HTTP port), the dispatch
guardian, to which livekit-server then sends its webhooks, and a second livekit-server
node on the same Redis (distributed mode: rooms are spread over the nodes).
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.procs import (
    LabError,
    ProcessTable,
    check_port_free,
    http_ok,
    log_contains,
    redis_ok,
)

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(os.environ.get("SWITCHBOARD_CACHE", Path.home() / ".cache/switchboard")) / "bin"


@dataclass(frozen=True)
class LabConfig:
    # Another namespace (LAB_NETNS_NAME) with another state dir runs a second lab beside.
    state_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("LAB_STATE_DIR") or ROOT / ".lab")
    )
    server_ip: str = field(default_factory=lambda: os.environ.get("LAB_SERVER_IP", "127.0.0.1"))
    phone_ip: str = field(default_factory=lambda: os.environ.get("LAB_PHONE_IP", "127.0.0.1"))
    netns: str = field(default_factory=lambda: os.environ.get("LAB_NETNS", ""))
    redis_port: int = 6379
    livekit_port: int = 7880
    rtc_tcp_port: int = 7881
    rtc_udp_port: int = 7882
    sip_port: int = 5060
    sip_health_port: int = 8082
    rtp_ports: str = "10000-10200"
    worker_port: int = 8083
    ai_metrics_port: int = 8084  # the AI worker's Prometheus endpoint (/metrics)
    # The guardian's webhook receiver; extra workers listen from extra_worker_port up.
    guardian_port: int = 8090
    ai_double_port: int = 8095  # lab/testing/fake_openai.py, for `lab up --ai`
    extra_worker_port: int = 8100
    # Node n (2, 3...) of a cluster listens NODE_PORT_STEP * (n - 1) ports above node 1.
    node_port_step: int = 10
    api_key: str = "devkey"
    # Not a secret: the lab listens only inside its own namespace.
    api_secret: str = "switchboard-lab-secret-not-for-production"
    inbound_number: str = "+15105550100"
    agent_name: str = "switchboard-lab"
    ai_number: str = "+15105550111"
    ai_agent_name: str = "switchboard-lab-ai"
    reference_number: str = "+15105550113"  # bench/reference_agent.py (bench.side_by_side)
    reference_agent_name: str = "switchboard-lab-reference"
    guarded_number: str = "+15105550120"
    guarded_agent_name: str = "switchboard-lab-guarded"
    menu_number: str = "+15105550114"  # a keyless worker with keypad menus (tests)
    menu_agent_name: str = "switchboard-lab-menu"
    telephony_file: Path = ROOT / "lab/telephony.toml"
    routes_file: Path = ROOT / "routes.toml"

    @property
    def livekit_url(self) -> str:
        return f"ws://{self.server_ip}:{self.livekit_port}"

    def node_ports(self, node: int) -> tuple[int, int, int]:
        """Node ``node``'s (HTTP/WebSocket, RTC TCP, RTC UDP) ports; node 1 is the lab's."""
        step = self.node_port_step * (node - 1)
        return self.livekit_port + step, self.rtc_tcp_port + step, self.rtc_udp_port + step

    @property
    def webhook_url(self) -> str:
        return f"http://{self.server_ip}:{self.guardian_port}/webhook"

    @property
    def events_file(self) -> Path:
        return self.state_dir / "events.jsonl"

    @property
    def env_file(self) -> Path:
        return self.state_dir / "lab.env"

    @property
    def database_url(self) -> str:
        """Where the lab's workers keep the call records (their SWITCHBOARD_STATE_DIR)."""
        return f"sqlite:///{self.state_dir / 'state' / 'switchboard.db'}"


def _interface_of(ip: str) -> str | None:
    """The interface that carries ``ip`` (so WebRTC advertises only that one)."""
    import subprocess

    out = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) > 3 and parts[3].split("/")[0] == ip:
            return parts[1].split("@")[0]
    return None


def livekit_yaml(c: LabConfig, *, webhooks: bool = False, node: int = 1) -> str:
    """Node ``node``'s configuration. Every node shares the lab's Redis, which makes them
    one cluster: a room is placed on a random serving node (``node_selector``), and a
    participant connecting to any node is relayed to its room's node."""
    port, rtc_tcp, rtc_udp = c.node_ports(node)
    iface = _interface_of(c.server_ip)
    includes = f"\n  interfaces:\n    includes: [{iface}]" if iface else ""
    # Signed with the lab's key; the guardian refuses anything that does not verify.
    webhook = f"webhook:\n  api_key: {c.api_key}\n  urls: [{c.webhook_url}]\n" if webhooks else ""
    return f"""\
port: {port}
bind_addresses: [{c.server_ip}]
keys:
  {c.api_key}: {c.api_secret}
redis:
  address: 127.0.0.1:{c.redis_port}
rtc:
  tcp_port: {rtc_tcp}
  udp_port: {rtc_udp}
  use_external_ip: false
  node_ip: {c.server_ip}{includes}
  # Without this, clients are told to use public STUN servers; the lab must not even try.
  stun_servers: ["{c.server_ip}:3478"]
room:
  empty_timeout: 10
  departure_timeout: 5
node_selector:
  kind: any
  sort_by: random
logging:
  level: info
{webhook}"""


def sip_yaml(c: LabConfig) -> str:
    return f"""\
api_key: {c.api_key}
api_secret: {c.api_secret}
ws_url: {c.livekit_url}
redis:
  address: 127.0.0.1:{c.redis_port}
sip_port: {c.sip_port}
rtp_port: {c.rtp_ports}
use_external_ip: false
listen_ip: {c.server_ip}
nat_1_to_1_ip: {c.server_ip}
local_net: {c.server_ip}/24
health_port: {c.sip_health_port}
max_cpu_utilization: 1.0
logging:
  level: debug
"""


class Lab:
    def __init__(self, config: LabConfig | None = None) -> None:
        self.c = config or LabConfig()
        self.procs = ProcessTable(self.c.state_dir)

    def up(
        self,
        *,
        agent_mode: str | None = "start",
        workers: int = 1,
        guardian: bool = False,
        webhooks: bool = False,
        nodes: int = 1,
    ) -> dict[str, str]:
        """Start everything; on any failure stop what was started and raise LabError.

        ``workers`` agent workers answer the lab's number (``agent``, ``agent-2``...);
        ``webhooks`` has livekit-server send its webhooks to the guardian's port, and
        ``guardian`` (which implies it) starts a guardian for the lab's agent name;
        ``nodes`` livekit-server nodes share the lab's Redis (the SIP service and the
        workers connect to node 1, which relays to the others).
        """
        if self.procs.running():
            raise LabError(
                f"a lab is already running (see {self.procs.state_dir}); run `make lab-down` first"
            )
        self.procs.stop_all()  # forget the pids of a lab that died without `lab down`
        try:
            self._start_servers(webhooks=webhooks or guardian)
            for node in range(2, nodes + 1):
                self.start_node(node)
            ids = asyncio.run(self._provision())
            if agent_mode:
                self.start_agent(agent_mode)
                if workers > 1:
                    self.start_workers(workers - 1, mode=agent_mode, first=2)
            if guardian:
                self.start_guardian()
        except BaseException:
            self.down()
            raise
        env = self._env(ids, webhooks=webhooks or guardian, nodes=nodes)
        self.c.env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
        return env

    def down(self) -> list[str]:
        return self.procs.stop_all()

    def _start_servers(self, *, webhooks: bool) -> None:
        c = self.c
        for exe in ("livekit-server", "livekit-sip"):
            if not (BIN / exe).exists():
                raise LabError(f"{BIN / exe} is missing: run lab/setup.sh (or `make setup`)")
        redis = shutil.which("redis-server")
        if redis is None:
            raise LabError("redis-server is missing: run lab/setup.sh")
        checks = [
            ("127.0.0.1", c.redis_port, socket.SOCK_STREAM),
            (c.server_ip, c.livekit_port, socket.SOCK_STREAM),
            (c.server_ip, c.rtc_tcp_port, socket.SOCK_STREAM),
            (c.server_ip, c.rtc_udp_port, socket.SOCK_DGRAM),
            (c.server_ip, c.sip_port, socket.SOCK_DGRAM),
            ("127.0.0.1", c.sip_health_port, socket.SOCK_STREAM),
        ]
        for ip, port, kind in checks:
            check_port_free(ip, port, kind)
        c.state_dir.mkdir(parents=True, exist_ok=True)
        (c.state_dir / "livekit.yaml").write_text(livekit_yaml(c, webhooks=webhooks))
        (c.state_dir / "sip.yaml").write_text(sip_yaml(c))
        c.events_file.unlink(missing_ok=True)

        p = self.procs.start(
            "redis",
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(c.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
            ],
        )
        self.procs.wait_ready(
            p, lambda: redis_ok("127.0.0.1", c.redis_port), deadline_s=10, what="answering PING"
        )
        p = self.procs.start(
            "livekit-server",
            [str(BIN / "livekit-server"), "--config", str(c.state_dir / "livekit.yaml")],
        )
        self.procs.wait_ready(
            p,
            lambda: http_ok(f"http://{c.server_ip}:{c.livekit_port}/"),
            deadline_s=30,
            what=f"HTTP 200 on port {c.livekit_port}",
        )
        p = self.procs.start(
            "livekit-sip", [str(BIN / "livekit-sip"), "--config", str(c.state_dir / "sip.yaml")]
        )
        self.procs.wait_ready(
            p,
            lambda: http_ok(f"http://127.0.0.1:{c.sip_health_port}/"),
            deadline_s=30,
            what=f"health 200 on port {c.sip_health_port}",
        )

    def start_node(self, node: int = 2) -> str:
        """Start livekit-server node ``node`` (``livekit-server-<node>``) beside node 1, on
        the same Redis, with node 1's webhooks; returns its process name. SIGTERM drains
        it (livekit-server: no new room, then it waits for its participants to leave)."""
        c = self.c
        port, rtc_tcp, rtc_udp = c.node_ports(node)
        check_port_free(c.server_ip, port)
        check_port_free(c.server_ip, rtc_tcp)
        check_port_free(c.server_ip, rtc_udp, socket.SOCK_DGRAM)
        webhooks = "webhook:" in (c.state_dir / "livekit.yaml").read_text()
        config = c.state_dir / f"livekit-{node}.yaml"
        config.write_text(livekit_yaml(c, webhooks=webhooks, node=node))
        name = f"livekit-server-{node}"
        p = self.procs.start(name, [str(BIN / "livekit-server"), "--config", str(config)])
        self.procs.wait_ready(
            p,
            lambda: http_ok(f"http://{c.server_ip}:{port}/"),
            deadline_s=30,
            what=f"HTTP 200 on port {port}",
        )
        return name

    async def _provision(self) -> dict[str, str]:
        from switchboard.telephony.config import load_config
        from switchboard.telephony.provision import provision

        env = {
            **os.environ,
            "LAB_AGENT_NAME": self.c.agent_name,
            "LAB_AI_AGENT_NAME": self.c.ai_agent_name,
            "LAB_REFERENCE_AGENT_NAME": self.c.reference_agent_name,
            "LAB_SIP_CALLEE_ADDR": f"{self.c.phone_ip}:5070",
            "LAB_GUARDED_AGENT_NAME": self.c.guarded_agent_name,
            "LAB_MENU_AGENT_NAME": self.c.menu_agent_name,
        }
        config = load_config(self.c.telephony_file, env)
        with (self.c.state_dir / "provision.log").open("w") as out:
            result = await provision(
                config,
                url=self.c.livekit_url.replace("ws://", "http://"),
                api_key=self.c.api_key,
                api_secret=self.c.api_secret,
                out=out,
            )
        return {
            "inbound": result.inbound_trunk_ids["lab-inbound"],
            "rule": result.dispatch_rule_ids["lab-inbound-rule"],
            "outbound": result.outbound_trunk_ids["lab-callee"],
        }

    def agent_env(self) -> dict[str, str]:
        c = self.c
        return {
            **os.environ,
            "LIVEKIT_URL": c.livekit_url,
            "LIVEKIT_API_KEY": c.api_key,
            "LIVEKIT_API_SECRET": c.api_secret,
            "SWITCHBOARD_AGENT_NAME": c.agent_name,
            "SWITCHBOARD_EVENTS_FILE": str(c.events_file),
            "SWITCHBOARD_WORKER_PORT": str(c.worker_port),
            "SWITCHBOARD_ROUTES": str(c.routes_file),
            "SWITCHBOARD_STATE_DIR": str(c.state_dir / "state"),
            # One worker answers every lab call: count capacity in calls, not CPU.
            "SWITCHBOARD_MAX_CALLS": "30",
            "SWITCHBOARD_LOAD_THRESHOLD": "0.99",
        }

    def start_agent(
        self,
        mode: str = "start",
        *,
        name: str = "agent",
        env: dict[str, str] | None = None,
        app: Path | None = None,
    ) -> None:
        """Start an agent worker; ``env`` overrides the lab's defaults (e.g. another agent
        name and AI endpoint for a second worker); ``app`` runs another copy of the agent
        with its own virtual environment (``app/.venv``), as the container image has it."""
        argv = self._agent_argv(mode)
        if app is not None:
            argv = [str(app / ".venv" / "bin" / "python"), str(app / "agent.py"), mode]
        p = self.procs.start(name, argv, env={**self.agent_env(), **(env or {})})
        self.procs.wait_ready(
            p,
            lambda: log_contains(p.log, "registered worker"),
            deadline_s=90,
            what="registered with the LiveKit server",
        )

    def start_workers(
        self,
        count: int,
        *,
        mode: str = "start",
        name: str = "agent",
        first: int = 1,
        env: dict[str, str] | None = None,
    ) -> list[str]:
        """Start ``count`` more agent workers, ``{name}-{first}``..., each its own process
        with its own HTTP port; all start at once, then each must register. Returns their
        process names (for ``procs.stop`` or a test's SIGKILL)."""
        procs = []
        for i in range(first, first + count):
            port = self.c.extra_worker_port + i
            check_port_free("127.0.0.1", port)
            worker_env = {**self.agent_env(), "SWITCHBOARD_WORKER_PORT": str(port), **(env or {})}
            procs.append(self.procs.start(f"{name}-{i}", self._agent_argv(mode), env=worker_env))
        for p in procs:
            self.procs.wait_ready(
                p,
                functools.partial(log_contains, p.log, "registered worker"),
                deadline_s=90,
                what="registered with the LiveKit server",
            )
        return [p.name for p in procs]

    def start_guardian(
        self, *, name: str = "guardian", port: int | None = None, env: dict[str, str] | None = None
    ) -> None:
        """Start ``switchboard guardian`` on the lab's guardian port, where livekit-server
        sends its webhooks when the lab was started with them (another ``port``: a second
        guardian, which only reconciles); ``env`` overrides, e.g. SWITCHBOARD_AGENT_NAME
        for the agent name it guards."""
        c = self.c
        port = port or c.guardian_port
        check_port_free(c.server_ip, port)
        guardian_env = {
            **os.environ,
            "LIVEKIT_URL": c.livekit_url,
            "LIVEKIT_API_KEY": c.api_key,
            "LIVEKIT_API_SECRET": c.api_secret,
            "SWITCHBOARD_AGENT_NAME": c.agent_name,
            "SWITCHBOARD_EVENTS_FILE": str(c.events_file),
            "SWITCHBOARD_GUARDIAN_BIND": c.server_ip,
            "SWITCHBOARD_GUARDIAN_PORT": str(port),
            # The workers' database: the guardian reads their call leases there.
            "SWITCHBOARD_STATE_DIR": str(c.state_dir / "state"),
            **(env or {}),
        }
        argv = [sys.executable, "-m", "switchboard.cli.main", "guardian"]
        p = self.procs.start(name, argv, env=guardian_env)
        self.procs.wait_ready(
            p,
            lambda: http_ok(f"http://{c.server_ip}:{port}/healthz"),
            deadline_s=30,
            what=f"health 200 on port {port}",
        )

    def start_ai(self, lab_env: dict[str, str], mode: str = "start") -> None:
        """The worker that answers LAB_AI_NUMBER, its LLM and STT the OpenAI-compatible
        test double (``lab/testing/fake_openai.py``) run as a process of the lab: what the
        tests run for themselves, left running for a person to call."""
        c = self.c
        check_port_free("127.0.0.1", c.ai_double_port)
        argv = [sys.executable, "-m", "lab.testing.fake_openai", "--port", str(c.ai_double_port)]
        p = self.procs.start("fake-openai", argv)
        self.procs.wait_ready(
            p,
            lambda: http_ok(f"http://127.0.0.1:{c.ai_double_port}/v1/models"),
            deadline_s=30,
            what=f"HTTP 200 on port {c.ai_double_port}",
        )
        base_url = f"http://127.0.0.1:{c.ai_double_port}/v1"
        self.start_agent(mode, name="agent-ai", env=ai_worker_env(lab_env, base_url))
        with self.c.env_file.open("a") as env_file:
            env_file.write("LAB_AI_WORKER=1\n")

    @staticmethod
    def _agent_argv(mode: str) -> list[str]:
        return [sys.executable, str(ROOT / "agent.py"), mode]

    def _env(self, ids: dict[str, str], *, webhooks: bool, nodes: int = 1) -> dict[str, str]:
        c = self.c
        node_urls = [f"ws://{c.server_ip}:{c.node_ports(n)[0]}" for n in range(1, nodes + 1)]
        return {
            "LIVEKIT_URL": c.livekit_url,
            "LIVEKIT_API_KEY": c.api_key,
            "LIVEKIT_API_SECRET": c.api_secret,
            "SIP_HOST": c.server_ip,
            "SIP_PORT": str(c.sip_port),
            "LAB_PHONE_IP": c.phone_ip,
            "LAB_INBOUND_NUMBER": c.inbound_number,
            "LAB_AGENT_NAME": c.agent_name,
            "LAB_AI_NUMBER": c.ai_number,
            "LAB_AI_AGENT_NAME": c.ai_agent_name,
            "LAB_REFERENCE_NUMBER": c.reference_number,
            "LAB_REFERENCE_AGENT_NAME": c.reference_agent_name,
            "LAB_CALLEE_ADDR": f"{c.phone_ip}:5070",
            "LAB_NETNS": c.netns,
            "LAB_EVENTS_FILE": str(c.events_file),
            "LAB_DATABASE_URL": c.database_url,
            # Under its own name too: with the lab's env loaded, `switchboard calls` (and
            # every command that reads the records) shows the lab's calls.
            "DATABASE_URL": c.database_url,
            "LAB_INBOUND_TRUNK_ID": ids["inbound"],
            "LAB_DISPATCH_RULE_ID": ids["rule"],
            "LAB_OUTBOUND_TRUNK_ID": ids["outbound"],
            "LAB_GUARDED_NUMBER": c.guarded_number,
            "LAB_GUARDED_AGENT_NAME": c.guarded_agent_name,
            "LAB_MENU_NUMBER": c.menu_number,
            "LAB_MENU_AGENT_NAME": c.menu_agent_name,
            "LAB_GUARDIAN_URL": f"http://{c.server_ip}:{c.guardian_port}",
            "LAB_WEBHOOKS": "1" if webhooks else "0",
            "LAB_NODE_URLS": ",".join(node_urls),
            "LAB_REDIS": f"127.0.0.1:{c.redis_port}",
            "LAB_STARTED_AT": str(int(time.time())),
        }


def ai_worker_env(
    lab_env: dict[str, str], openai_base_url: str, deepgram_url: str | None = None
) -> dict[str, str]:
    """The environment of the lab's AI worker (the number LAB_AI_NUMBER): its LLM and STT
    are an OpenAI-compatible endpoint at ``openai_base_url`` (the tests' double), its STT
    Deepgram's streaming one at ``deepgram_url`` when given (the same double's); its
    Prometheus metrics are on ``ai_metrics_port``."""
    c = LabConfig()
    deepgram = (
        {"DEEPGRAM_API_KEY": "test-double", "SWITCHBOARD_DEEPGRAM_BASE_URL": deepgram_url}
        if deepgram_url
        else {}
    )
    return {
        **deepgram,
        "SWITCHBOARD_AGENT_NAME": lab_env["LAB_AI_AGENT_NAME"],
        "SWITCHBOARD_OPENAI_BASE_URL": openai_base_url,
        "OPENAI_API_KEY": "test-double",
        "SWITCHBOARD_LLM_MODEL": "fake",
        "SWITCHBOARD_LLM_FALLBACK_MODEL": "fake-second",
        "SWITCHBOARD_TTS": "espeak",
        "SWITCHBOARD_WORKER_PORT": "0",
        "SWITCHBOARD_ROUTES": str(ROOT / "lab/routes.toml"),
        "SWITCHBOARD_POLICY": str(ROOT / "lab/policy.toml"),
        "SWITCHBOARD_OUTBOUND_TRUNK_ID": lab_env["LAB_OUTBOUND_TRUNK_ID"],
        "SWITCHBOARD_RING_TIMEOUT": "4",
        "LAB_TEST_PIN": "48151623",  # the PIN of route lab-pin in lab/routes.toml
        "SWITCHBOARD_METRICS_PORT": str(c.ai_metrics_port),
        "SWITCHBOARD_METRICS_DIR": str(c.state_dir / "metrics-ai"),
        # A lockout a test can wait out (tests/test_hardening_calls.py); the count and
        # window keep their defaults.
        "SWITCHBOARD_PIN_LOCKOUT": "25",
    }
