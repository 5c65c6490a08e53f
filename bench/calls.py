"""`make bench`: real sequential calls through the lab.

Prints INVITE → 200 OK (time to answer) and 200 OK → first greeting audio at the caller
(time to greeting), p50/p95 over N calls, and writes them to bench/out/calls.json.
``--ai`` calls the AI worker instead of the keyless one, its STT and LLM an instant
OpenAI-compatible test double (TTS: the offline voice): what the framework and we add on
top of the providers (bench/out/calls-ai.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from pathlib import Path

from bench.stats import summary_ms
from lab.phone import place_call
from lab.procs import LabError
from lab.stack import Lab, ai_worker_env
from lab.testing.fake_openai import DEFAULT, FakeOpenAI, say

OUT = Path(__file__).resolve().parent / "out"


async def _calls(lab: Lab, n: int, number: str) -> tuple[list[float], list[float], int]:
    answer, greeting, failed = [], [], 0
    for i in range(n):
        result = await place_call(
            sip_host=lab.c.server_ip, sip_port=lab.c.sip_port, to_number=number,
            from_number=f"+4420712{i:05d}", local_ip=lab.c.phone_ip, hangup=0.2, timeout=30,
        )  # fmt: skip
        if result.time_to_answer is None or result.time_to_first_audio is None:
            failed += 1
            continue
        answer.append(result.time_to_answer)
        greeting.append(result.time_to_first_audio)
    return answer, greeting, failed


def _joined_to_session(events_file: Path) -> list[float]:
    """Per call, the agent's own time from seeing the caller to a running session (lookup,
    routing, providers, session start): read from the call events."""
    if not events_file.exists():
        return []
    seen: dict[str, dict[str, float]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        if event["event"] in ("caller", "session_started"):
            seen.setdefault(event["job_id"], {})[event["event"]] = event["ts"]
    return [e["session_started"] - e["caller"] for e in seen.values() if len(e) == 2]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls")
    parser.add_argument("-n", "--calls", type=int, default=20)
    parser.add_argument("--ai", action="store_true", help="the AI worker, with instant doubles")
    args = parser.parse_args()
    lab = Lab()
    try:
        env = lab.up(agent_mode="start")
        if args.ai:
            with FakeOpenAI(host="127.0.0.1", port=0) as fake:
                fake.script(DEFAULT, [say("Hello, thanks for calling. How can I help?")])
                lab.start_agent("start", name="agent-ai", env=ai_worker_env(env, fake.base_url))
                answer, greeting, failed = asyncio.run(_calls(lab, args.calls, lab.c.ai_number))
        else:
            answer, greeting, failed = asyncio.run(_calls(lab, args.calls, lab.c.inbound_number))
    except LabError as e:
        print(f"bench: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    joined_to_session = _joined_to_session(lab.c.events_file)
    figures = {
        "machine": f"{platform.machine()}, {platform.system()} {platform.release()}",
        "calls": args.calls,
        "failed": failed,
        "invite_to_200ok": summary_ms(answer),
        "200ok_to_greeting_audio": summary_ms(greeting),
        "caller_joined_to_session_started": summary_ms(joined_to_session),
    }
    mode = "AI worker, instant STT/LLM doubles" if args.ai else "keyless mode"
    print(f"\n{args.calls} sequential calls, {mode} ({failed} failed)")
    print(f"{'':34}{'p50':>10}{'p95':>10}{'max':>10}")
    for name in ("invite_to_200ok", "200ok_to_greeting_audio", "caller_joined_to_session_started"):
        row = figures[name]
        assert isinstance(row, dict)
        print(f"{name:34}{row['p50_ms']:>8} ms{row['p95_ms']:>7} ms{row['max_ms']:>7} ms")
    OUT.mkdir(exist_ok=True)
    (OUT / ("calls-ai.json" if args.ai else "calls.json")).write_text(json.dumps(figures, indent=1))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
