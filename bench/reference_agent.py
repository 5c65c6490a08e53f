"""The reference agent: the framework's floor, to measure switchboard's per-call cost against.

Written the way LiveKit's SIP lifecycle recipe is (docs.livekit.io/recipes/sip_lifecycle):
an ``AgentServer``, a prewarm that loads Silero into ``proc.userdata``, one
``@server.rtc_session(agent_name=...)`` entrypoint that starts an ``AgentSession`` and
connects, and the greeting in the Agent's ``on_enter``.  Nothing else: no directory, no
routing, no records, no events, no tools, no fallback models.

It runs against the lab like switchboard's AI worker and reads the same environment
(``lab.stack.ai_worker_env``), so that both have the same providers (the
OpenAI-compatible endpoint at SWITCHBOARD_OPENAI_BASE_URL for the LLM and STT, the espeak
voice) and the same worker options (idle processes, capacity counted in calls, load
threshold, HTTP port).  ``bench.side_by_side`` starts it:

    python bench/reference_agent.py start
"""

from __future__ import annotations

import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, JobProcess, cli
from livekit.plugins import openai, silero

# Only the voice comes from switchboard (keyless.py imports nothing else of ours): the
# reference must not pay for switchboard's imports.
from switchboard.call.keyless import EspeakTTS

VOICE_SAMPLE_RATE = 24000  # switchboard.call.providers.VOICE_SAMPLE_RATE: the same voice
MAX_CALLS = int(os.environ.get("SWITCHBOARD_MAX_CALLS", "0"))
IDLE_PROCESSES = int(os.environ.get("SWITCHBOARD_IDLE_PROCESSES", "0"))


def _calls_load(worker: AgentServer) -> float:
    # As agent.py: capacity counted in calls, not CPU, so the two workers refuse alike.
    return min(len(worker.active_jobs) / MAX_CALLS, 1.0)


server = AgentServer(
    port=int(os.environ.get("SWITCHBOARD_WORKER_PORT", "8081")),
    load_threshold=float(os.environ.get("SWITCHBOARD_LOAD_THRESHOLD", "0.7")),
    load_fnc=_calls_load if MAX_CALLS else None,
)
if IDLE_PROCESSES:  # 0: the framework's default, as agent.py leaves it
    server.update_options(num_idle_processes=IDLE_PROCESSES)


def prewarm(proc: JobProcess) -> None:
    proc.userdata["vad"] = silero.VAD.load()


server.setup_fnc = prewarm


class ReferenceAgent(Agent):
    def __init__(self) -> None:
        super().__init__(instructions="You are a helpful assistant answering a phone call.")

    async def on_enter(self) -> None:
        self.session.generate_reply()


@server.rtc_session(agent_name=os.environ.get("SWITCHBOARD_AGENT_NAME", "reference"))
async def entrypoint(ctx: JobContext) -> None:
    base_url = os.environ["SWITCHBOARD_OPENAI_BASE_URL"]
    api_key = os.environ.get("OPENAI_API_KEY") or "none"
    session: AgentSession[None] = AgentSession(
        stt=openai.STT(
            base_url=base_url,
            api_key=api_key,
            model=os.environ.get("SWITCHBOARD_STT_MODEL", "whisper-1"),
            language="en",
            use_realtime=False,
        ),
        llm=openai.LLM(
            base_url=base_url,
            api_key=api_key,
            model=os.environ.get("SWITCHBOARD_LLM_MODEL", "fake"),
        ),
        tts=EspeakTTS(sample_rate=VOICE_SAMPLE_RATE),
        vad=ctx.proc.userdata["vad"],
        preemptive_generation=True,
    )
    await session.start(agent=ReferenceAgent(), room=ctx.room)
    await ctx.connect()


if __name__ == "__main__":
    cli.run_app(server)
