"""Handles on a running lab that tests and benchmarks hold: its environment, its event file,
and the second worker whose LLM and STT are a test double."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.procs import redis_hash
from lab.stack import Lab
from lab.testing.fake_openai import FakeOpenAI


@dataclass(frozen=True)
class LabHandle:
    env: dict[str, str]
    lab: Lab

    @property
    def events_file(self) -> Path:
        return Path(self.env["LAB_EVENTS_FILE"])

    @property
    def http_url(self) -> str:
        return self.env["LIVEKIT_URL"].replace("ws://", "http://")

    def room_nodes(self) -> dict[str, str]:
        """Room name -> the ID of the livekit-server node that holds it, for the rooms that
        exist now: Redis's ``room_node_map``, the servers' own bookkeeping (with two nodes,
        ``Lab.start_node``, rooms are spread over both)."""
        host, port = self.env.get("LAB_REDIS", "127.0.0.1:6379").rsplit(":", 1)
        placed = redis_hash(host, int(port), "room_node_map")
        return {room: node.decode() for room, node in placed.items()}

    def events(self) -> list[dict[str, Any]]:
        if not self.events_file.exists():
            return []
        return [json.loads(line) for line in self.events_file.read_text().splitlines()]

    def wait_event(self, timeout: float = 15.0, **match: Any) -> dict[str, Any]:
        """Wait (by polling under a deadline) for an event whose fields equal ``match``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for event in self.events():
                if all(event.get(k) == v for k, v in match.items()):
                    return event
            time.sleep(0.05)
        raise AssertionError(f"no event {match} within {timeout}s; events: {self.events()[-10:]}")


@dataclass(frozen=True)
class AiLab:
    """The lab plus a second agent worker whose LLM and STT are an OpenAI-compatible test
    double (no cloud AI is reachable here); it answers LAB_AI_NUMBER."""

    lab: LabHandle
    fake: FakeOpenAI

    @property
    def env(self) -> dict[str, str]:
        return self.lab.env
