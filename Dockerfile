# The agent worker as a container: for LiveKit Cloud agents (`lk agent create`) and for
# self-hosting next to your own LiveKit server. Multi-stage, non-root, locked deps.
FROM python:3.11-slim AS base
# espeak-ng: the offline voice (keyless mode, and the fallback voice when a TTS provider
# fails); libportaudio2 is only needed by `console`, which does not run in containers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng ca-certificates \
 && rm -rf /var/lib/apt/lists/*

FROM base AS build
COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never \
    UV_CACHE_DIR=/tmp/uv-cache HF_HOME=/app/.models
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --locked --no-dev --no-install-project
COPY agent.py routes.toml policy.toml ./
COPY switchboard/ switchboard/
COPY tools/ tools/
COPY prompts/ prompts/
RUN uv sync --locked --no-dev
# Model files (turn detector and the like) are fetched at build time, never at call time.
RUN .venv/bin/python agent.py download-files

FROM base
RUN useradd --uid 10001 --create-home --shell /usr/sbin/nologin agent
WORKDIR /app
COPY --from=build --chown=agent:agent /app /app
USER agent
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 HF_HOME=/app/.models \
    SWITCHBOARD_STATE_DIR=/home/agent/state
# Health checks hit the worker's HTTP port (SWITCHBOARD_WORKER_PORT, default 8081).
EXPOSE 8081
CMD ["python", "agent.py", "start"]
