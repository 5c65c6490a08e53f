"""`make demo`: start the lab and the agent, place one real SIP call, show what happened."""

from __future__ import annotations

import asyncio
import sys

from lab.phone import CallResult, place_call
from lab.procs import LabError
from lab.report import RECORD_WAIT_S, caller_event, events, record_line, report, wait_for_record
from lab.stack import Lab

CALLER = "+442071234567"


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
        caller = caller_event(lab.c.events_file, result)
        print(report(result, events(lab.c.events_file, caller["job_id"]) if caller else []))
        if caller is not None:
            # Before the lab stops: the record is written once the call's job has ended.
            seen = wait_for_record(lab.c.database_url, caller["caller"]["call_id"], RECORD_WAIT_S)
            print(record_line(asyncio.run(seen)))
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
