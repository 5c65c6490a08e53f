"""Offline text-to-speech for keyless mode.

Keyless mode lets the agent run with no cloud AI keys: when no AI provider is configured
(or none is reachable), a caller must still hear a voice that answers and says honestly
what the agent can and cannot do, rather than silence or a dropped call. `EspeakTTS`
provides that voice from the local ``espeak-ng`` binary, so it needs no network, no key
and no model download.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
from typing import Never

from livekit.agents import (
    DEFAULT_API_CONNECT_OPTIONS,
    APIConnectionError,
    APIConnectOptions,
    APIError,
    APITimeoutError,
    tts,
    utils,
)

__all__ = ["EspeakNotFoundError", "EspeakTTS"]

_INSTALL_HINT = (
    "espeak-ng is not installed; install it with `apt-get install espeak-ng` "
    "(Debian/Ubuntu) or `brew install espeak-ng`"
)


class EspeakNotFoundError(RuntimeError):
    """The espeak-ng executable could not be found."""


class EspeakTTS(tts.TTS[Never]):
    """Non-streaming TTS backed by the ``espeak-ng`` command line.

    AgentSession wraps a non-streaming TTS in ``tts.StreamAdapter``, which splits the reply
    into sentences and calls `synthesize` once per sentence.
    """

    def __init__(
        self,
        *,
        voice: str = "en-us",
        rate_wpm: int = 160,
        sample_rate: int = 16000,
        executable: str | None = None,
    ) -> None:
        if rate_wpm <= 0 or sample_rate <= 0:
            raise ValueError("rate_wpm and sample_rate must be positive")
        # fail when the agent is built, not on the first call it has to answer
        found = shutil.which(executable or "espeak-ng")
        if found is None:
            where = f" (looked for {executable!r})" if executable else ""
            raise EspeakNotFoundError(_INSTALL_HINT + where)
        super().__init__(
            capabilities=tts.TTSCapabilities(streaming=False),
            sample_rate=sample_rate,
            num_channels=1,
        )
        # --stdin: the text never becomes an argv entry, so a leading "-" can't be read as
        # an option, NUL bytes or huge texts can't break exec(), and no shell is involved.
        # -b 1: we always send UTF-8, whatever the locale.
        self._argv = [found, "--stdout", "--stdin", "-b", "1", "-v", voice, "-s", str(rate_wpm)]
        self._voice = voice

    @property
    def model(self) -> str:
        return self._voice

    @property
    def provider(self) -> str:
        return "espeak-ng"

    def synthesize(
        self, text: str, *, conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
    ) -> tts.ChunkedStream:
        return _EspeakStream(tts=self, input_text=text, conn_options=conn_options)


class _EspeakStream(tts.ChunkedStream):
    def __init__(self, *, tts: EspeakTTS, input_text: str, conn_options: APIConnectOptions):
        super().__init__(tts=tts, input_text=input_text, conn_options=conn_options)
        self._espeak = tts

    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        # espeak-ng writes 22050 Hz WAV. With mime_type "audio/wav" the emitter's own WAV
        # decoder parses the header and resamples (rtc.AudioResampler) to the rate given
        # here, so we neither hard-code espeak's rate nor ship a resampler of our own.
        output_emitter.initialize(
            request_id=utils.shortuuid(),
            sample_rate=self._espeak.sample_rate,
            num_channels=1,
            mime_type="audio/wav",
        )
        pipe = asyncio.subprocess.PIPE
        try:
            proc = await asyncio.create_subprocess_exec(
                *self._espeak._argv, stdin=pipe, stdout=pipe, stderr=pipe
            )
        except OSError as e:  # removed or made non-executable after construction
            raise APIConnectionError(f"cannot run espeak-ng: {e}", retryable=False) from e
        assert proc.stdin and proc.stdout and proc.stderr
        # read concurrently so a chatty stderr can never block espeak on a full pipe
        stderr_task = asyncio.create_task(proc.stderr.read())
        try:
            async with asyncio.timeout(self._conn_options.timeout):
                # --stdin reads to EOF before speaking, so writing it all first can't
                # deadlock against the stdout we aren't reading yet
                proc.stdin.write(self._input_text.encode())
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    await proc.stdin.drain()  # if espeak died early, its exit status says why
                proc.stdin.close()
                started = False
                while chunk := await proc.stdout.read(8192):
                    if started and chunk.startswith(b"RIFF"):
                        # the WAV decoder restarts on any push that begins with b"RIFF";
                        # keep PCM that happens to spell it from looking like a new file
                        output_emitter.push(chunk[:1])
                        chunk = chunk[1:]
                    output_emitter.push(chunk)
                    started = True
                stderr = await stderr_task
                returncode = await proc.wait()
        except TimeoutError:
            raise APITimeoutError(
                f"espeak-ng took longer than {self._conn_options.timeout}s"
            ) from None
        finally:
            # on timeout or cancellation (the caller barged in) don't leave espeak running
            if proc.returncode is None:
                _kill(proc)
            # asyncio's wait() also waits for EOF on every pipe, and it stops reading a pipe
            # whose buffer is full, so an abandoned stdout must be drained or wait() hangs
            proc.stdin.close()
            while await proc.stdout.read(65536):
                pass
            await proc.wait()
            await utils.aio.cancel_and_wait(stderr_task)
        if returncode != 0:
            tail = stderr.decode(errors="replace").strip()[-500:]
            # unknown voice, broken install: a retry would fail the same way
            raise APIError(f"espeak-ng exited with {returncode}: {tail}", retryable=False)
        output_emitter.flush()


def _kill(proc: asyncio.subprocess.Process) -> None:
    # Process.kill() polls with waitpid(), which reaps an espeak that has just exited behind
    # asyncio's child watcher (logging "Unknown child process"); WNOWAIT only peeks.
    if not hasattr(os, "waitid"):  # macOS
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        return
    with contextlib.suppress(ChildProcessError, ProcessLookupError):
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None:
            os.kill(proc.pid, signal.SIGKILL)
