"""`make demo`: start the lab and the agent, place one real SIP call, show what happened."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from lab.phone import CallResult, place_call
from lab.procs import LabError
from lab.stack import Lab

CALLER = "+442071234567"


def _events(path: Path, job_id: str | None = None) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    return [r for r in rows if job_id is None or r.get("job_id") == job_id]


def _report(result: CallResult, events: list[dict[str, Any]]) -> str:
    lines = ["", "What happened on the call", "-------------------------"]
    lines.append(f"answered        : {result.answered} (SIP {result.final_status})")
    if result.time_to_answer is not None:
        lines.append(f"INVITE → 200 OK : {result.time_to_answer * 1000:.0f} ms")
    if result.time_to_first_audio is not None:
        lines.append(f"200 OK → voice  : {result.time_to_first_audio * 1000:.0f} ms")
    lines.append(f"audio heard     : {result.received_audio_seconds:.1f} s")
    said: set[str] = set()  # keyless speech is both an "agent_said" and a transcript line
    for event in events:
        kind = event["event"]
        if kind == "caller":
            c = event["caller"]
            lines.append(
                f"who called      : {c['phone_number']} → {c['called_number']} "
                f"(call {c['call_id']}, custom {c['custom']})"
            )
        elif kind == "route":
            lines.append(f"route           : {event.get('route')} ({event.get('reason')})")
        elif kind == "providers":
            lines.append(
                f"providers       : stt={event['stt']} llm={event['llm']} tts={event['tts']}"
            )
        elif kind in ("agent_said", "transcript") and event.get("text") not in said:
            said.add(str(event.get("text")))
            who = "caller said     " if event.get("role") == "user" else "agent said      "
            lines.append(f"{who}: {event.get('text')!r}")
        elif kind in ("caller_left", "agent_hangup"):
            who = "the caller hung up" if kind == "caller_left" else "the agent hung up"
            lines.append(f"how it ended    : {who} ({event['reason']})")
    return "\n".join(lines)


async def _call(lab: Lab) -> CallResult:
    c = lab.c
    return await place_call(
        sip_host=c.server_ip,
        sip_port=c.sip_port,
        to_number=c.inbound_number,
        from_number=CALLER,
        headers={"X-Customer-Id": "demo-42"},
        local_ip=c.phone_ip,
        hangup="remote",
        timeout=60,
    )


def main() -> int:
    lab = Lab()
    try:
        print("demo: starting the lab (redis, livekit-server, livekit-sip, agent worker)...")
        lab.up(agent_mode="start")
        print(f"demo: calling {lab.c.inbound_number} from {CALLER} with sipp...")
        result = asyncio.run(_call(lab))
        caller = next((e for e in _events(lab.c.events_file) if e["event"] == "caller"
                       and e["caller"].get("call_id_full") == result.call_id), None)  # fmt: skip
        job = caller["job_id"] if caller else None
        print(_report(result, _events(lab.c.events_file, job) if job else []))
        if not result.answered:
            print(f"\ndemo: the call was not answered; sipp said:\n{result.sipp_log_tail}")
            return 1
        return 0
    except LabError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
        print("\ndemo: lab stopped")


if __name__ == "__main__":
    sys.exit(main())
