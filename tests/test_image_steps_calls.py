"""The container image's build steps, run the way the image runs them, then a real call.

This machine has no container engine, so the Dockerfile's build stage is replayed here: its
COPY lines decide which files go into a fresh application directory (nothing else of the
repository: no tests, no lab), its RUN lines run there (``uv sync --locked --no-dev``,
``download-files``), and the worker started from that directory's own virtual environment
answers a real call on the lab. The steps are read from the Dockerfile itself, so an
edit there that breaks the image (a file not copied, a dev-only import) fails here.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.stack import ROOT
from lab.testing.calls import call_lab
from lab.testing.handles import LabHandle

pytestmark = pytest.mark.lab


def build_stage(dockerfile: Path) -> list[str]:
    """The instructions of the Dockerfile's ``build`` stage, continuation lines joined."""
    text = dockerfile.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    start = next(
        i for i, ln in enumerate(lines) if ln.upper().startswith("FROM") and "AS build" in ln
    )
    stage = []
    for line in lines[start + 1 :]:
        if line.startswith("FROM"):
            break
        stage.append(line)
    return stage


def test_the_build_stage_is_read_as_expected() -> None:
    stage = build_stage(ROOT / "Dockerfile")
    runs = [ln for ln in stage if ln.startswith("RUN ")]
    assert any("uv sync --locked --no-dev" in r for r in runs)
    assert any("download-files" in r for r in runs)


@pytest.fixture(scope="module")
def image_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    app = tmp_path_factory.mktemp("image") / "app"
    app.mkdir()
    # Offline: tests reach nothing beyond the lab; `make setup` (uv sync) has filled uv's
    # cache with every locked package and the build backend.
    env = {**os.environ, "UV_LINK_MODE": "copy", "UV_PYTHON_DOWNLOADS": "never",
           "UV_OFFLINE": "1", "HF_HOME": str(app / ".models"), "VIRTUAL_ENV": ""}  # fmt: skip
    for line in build_stage(ROOT / "Dockerfile"):
        word, _, rest = line.partition(" ")
        if word == "COPY" and not rest.startswith("--from"):
            *sources, _dest = shlex.split(rest)
            for source in sources:
                src = ROOT / source.rstrip("/")
                if src.is_dir():
                    shutil.copytree(
                        src, app / src.name, ignore=shutil.ignore_patterns("__pycache__")
                    )
                else:
                    shutil.copy2(src, app / src.name)
        elif word == "RUN":
            done = subprocess.run(["bash", "-c", rest], cwd=app, env=env, capture_output=True,
                                  text=True, timeout=600)  # fmt: skip
            assert done.returncode == 0, (
                f"{rest} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
    yield app


async def test_the_image_answers_a_call(lab: LabHandle, image_app: Path) -> None:
    assert not (image_app / "tests").exists() and not (image_app / "lab").exists()
    lab.lab.procs.stop("agent")
    try:
        lab.lab.start_agent("start", name="agent-image", app=image_app)
        result = await call_lab(lab, from_number="+15105551111", hangup="remote", timeout=40)
        assert result.answered, result.sipp_log_tail
        # The keyless message, spoken by the image's own offline voice, then its hang-up.
        assert result.ended_by == "remote"
        assert result.received_audio_seconds > 3.0
    finally:
        lab.lab.procs.stop("agent-image")
        await asyncio.to_thread(lab.lab.start_agent, "start")
