"""`python -m bench.scale`: how many simultaneous real calls one keyless agent worker takes.

For each concurrency level L, places L sipp calls at once (each hangs up 1 s after the
greeting audio starts), ``ceil(calls_per_level / L)`` rounds of them (at least
``--min-rounds``), waiting between rounds until the server lists no room and the worker
is back to its idle processes.  Per level it reports the answered fraction, refused
(a final status >= 300) and unanswered calls (rang until the caller gave up after
``--timeout`` s), p50/p95 INVITE -> 200 OK and 200 OK -> first
greeting audio, CPU of the worker's process tree, of the lab's servers, of the callers
(this process and its sipp children) and of the whole machine, and the worker tree's
memory (RSS and PSS: idle before, peak, and growth per call in progress, each call being
one job process), and what the worker logged.  The knee is the first level
whose answered fraction drops or whose p95 latency degrades (see ``find_knee``).

The lab runs with its state in .lab/bench/ (logs in .lab/bench/logs/), so that no test
session can mistake it for its own.  Writes bench/out/scale.json and bench/out/scale.png
(latency, memory and CPU against simultaneous calls).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil
from livekit import api

from bench.stats import percentile, summary_ms
from lab.phone import CallResult, place_call
from lab.procs import LabError, tcp_ok
from lab.stack import ROOT, Lab, LabConfig

OUT = Path(__file__).resolve().parent / "out"
MB = 1024 * 1024
SERVERS = ("livekit-server", "livekit-sip", "redis")
SETTLE_TIMEOUT = 45.0  # seconds a round's calls get to leave no room and no job behind


# -- the lab ------------------------------------------------------------------------------
def private_lab() -> Lab:
    """A lab whose state (pids, lab.env, logs) lives in .lab/bench/, not .lab/: a test
    session started meanwhile then cannot take it for a `make lab-up` lab and attach
    workers of its own to it, which would take calls meant for the benchmark's worker."""
    base = os.environ.get("LAB_STATE_DIR")  # a second lab's (its own namespace)
    return Lab(LabConfig(state_dir=(Path(base) if base else ROOT / ".lab") / "bench"))


def wait_for_no_lab(c: LabConfig, timeout: float = 600.0, every: float = 30.0) -> None:
    """One lab at a time (fixed ports): wait while another one answers on the server's
    port, checking every ``every`` s; LabError after ``timeout`` s."""
    end = time.monotonic() + timeout
    while tcp_ok(c.server_ip, c.livekit_port):
        if time.monotonic() >= end:
            raise LabError(f"another lab still listens on port {c.livekit_port} after "
                           f"{timeout:.0f}s; not starting a second one")  # fmt: skip
        print(f"bench: another lab is up (port {c.livekit_port}); checking again in "
              f"{every:.0f}s", file=sys.stderr)  # fmt: skip
        time.sleep(every)  # polling someone else's lab, which sends us no event


# -- process-tree usage -----------------------------------------------------------------
@dataclass(frozen=True)
class Usage:
    """One look at a process tree.  ``cpu_s`` counts the CPU seconds of every live process
    plus those of its exited, reaped children (``cutime``/``cstime``), so it only grows:
    a job process or an espeak-ng run that ends between two looks is still counted."""

    cpu_s: float = 0.0
    rss: int = 0
    pss: int = 0
    procs: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.cpu_s + other.cpu_s,
            self.rss + other.rss,
            self.pss + other.pss,
            self.procs + other.procs,
        )


def _tree(pid: int, exclude: Collection[int]) -> list[psutil.Process]:
    """``pid`` and its descendants, leaving out ``exclude`` and theirs."""
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        children.setdefault(proc.info["ppid"], []).append(proc.pid)
    out, todo = [], [pid]
    while todo:
        n = todo.pop()
        if n not in exclude:
            with suppress(psutil.Error):
                out.append(psutil.Process(n))
            todo += children.get(n, [])
    return out


def tree_usage(pid: int, *, pss: bool = False, exclude: Collection[int] = ()) -> Usage:
    """CPU and memory of ``pid`` and all its descendants but ``exclude`` (nothing if it is
    gone).  RSS comes from statm (cheap); PSS, only with ``pss``, from smaps_rollup, which
    has the kernel walk each process's page tables: ~5 ms of CPU per agent process."""
    total = Usage()
    for proc in _tree(pid, exclude):
        # Processes come and go while we look.
        with suppress(psutil.Error), proc.oneshot():
            t = proc.cpu_times()
            cpu = t.user + t.system + t.children_user + t.children_system
            if pss:
                m = proc.memory_full_info()  # PSS: shared pages divided among sharers
                total += Usage(cpu, m.rss, m.pss, 1)
            else:
                total += Usage(cpu, proc.memory_info().rss, 0, 1)
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    t = psutil.cpu_times()
    idle = t.idle + getattr(t, "iowait", 0.0)
    return sum(t) - idle, sum(t)


@dataclass(frozen=True)
class Snapshot:
    at: float
    worker: Usage
    servers: Usage
    callers: Usage  # this process and its sipp children, the memory probe left out
    probe: Usage
    machine: tuple[float, float]


@dataclass(frozen=True)
class Meter:
    """Cumulative CPU counters of every party, read at the edges of each round (between
    rounds nothing is timed, so the reads cost the calls nothing)."""

    worker_pid: int
    server_pids: tuple[int, ...]
    probe_pid: int  # callers are this process's tree without the probe and the lab

    def take(self, *, pss: bool = False) -> Snapshot:
        servers = Usage()
        for pid in self.server_pids:
            servers += tree_usage(pid)
        return Snapshot(
            time.time(),
            tree_usage(self.worker_pid, pss=pss),
            servers,
            tree_usage(os.getpid(), exclude={self.probe_pid, self.worker_pid, *self.server_pids}),
            tree_usage(self.probe_pid),
            machine_busy(),
        )


def _probe(worker_pid: int, path: str, interval: float, pss_every: int) -> None:
    """In a process of its own (no GIL shared with the callers' event loop, which stamps
    RTP packets): the worker tree's RSS every ``interval`` s, PSS every ``pss_every``-th."""
    with open(path, "a", encoding="utf-8") as out:
        for i in itertools.count():
            with_pss = i % pss_every == 0
            u = tree_usage(worker_pid, pss=with_pss)
            row = [time.time(), u.rss, u.pss if with_pss else None, u.procs]
            out.write(json.dumps(row) + "\n")
            out.flush()
            time.sleep(interval)  # pacing of the probe, not synchronisation


@dataclass(frozen=True)
class Peak:
    rss: int = 0
    pss: int = 0
    procs: int = 0

    def __or__(self, other: Peak) -> Peak:
        return Peak(
            max(self.rss, other.rss), max(self.pss, other.pss), max(self.procs, other.procs)
        )


class MemoryProbe:
    """``with MemoryProbe(pid) as probe:`` samples the worker tree's memory until the end
    of the block; ``probe.peak(start, end)`` is the highest seen in that window."""

    def __init__(self, worker_pid: int, interval: float = 0.25, pss_every: int = 4) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="sb-scale-")
        self._path = Path(self._tmp.name) / "memory.jsonl"
        ctx = multiprocessing.get_context("spawn")
        self._proc = ctx.Process(
            target=_probe, args=(worker_pid, str(self._path), interval, pss_every), daemon=True
        )

    @property
    def pid(self) -> int:
        assert self._proc.pid is not None, "the probe is not running"
        return self._proc.pid

    def peak(self, start: float, end: float) -> Peak:
        try:
            lines = self._path.read_text().splitlines()
        except FileNotFoundError:
            return Peak()
        best = Peak()
        for line in lines:
            at, rss, pss, procs = json.loads(line)
            if start <= at <= end:
                best |= Peak(rss, pss or 0, procs)
        return best

    def __enter__(self) -> MemoryProbe:
        self._proc.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._proc.terminate()
        self._proc.join(5)
        self._tmp.cleanup()


def _gave_up(r: CallResult) -> bool:
    return r.final_status is None or (r.final_status == 487 and r.ended_by != "remote")


# -- one level ---------------------------------------------------------------------------
@dataclass
class Level:
    calls: int
    rounds: int = 0
    results: list[CallResult] = field(default_factory=list)
    windows: list[tuple[Snapshot, Snapshot]] = field(default_factory=list)  # per round
    peak: Peak = field(default_factory=Peak)  # worker tree, during the rounds
    before: Usage = field(default_factory=Usage)  # worker tree, idle before the level
    before_at: float = 0.0
    settle_timeouts: int = 0
    worker_log: dict[str, Any] = field(default_factory=dict)  # see worker_log_summary
    level_cpu_s: float = 0.0  # worker tree, first round start to last round settled

    @property
    def placed(self) -> int:
        return len(self.results)

    @property
    def answered(self) -> int:
        return sum(r.answered for r in self.results)

    @property
    def refused(self) -> int:
        """Calls the far end turned down with a final status (busy, unavailable...)."""
        return sum(1 for r in self.results if not r.answered and not _gave_up(r))

    @property
    def unanswered(self) -> int:
        """Calls that rang until the caller gave up (the 487 answers our CANCEL)."""
        return sum(1 for r in self.results if not r.answered and _gave_up(r))

    @property
    def no_greeting(self) -> int:
        return sum(1 for r in self.results if r.answered and r.first_audio_at is None)

    def answer_s(self) -> list[float]:
        return [r.time_to_answer for r in self.results if r.time_to_answer is not None]

    def greeting_s(self) -> list[float]:
        return [r.time_to_first_audio for r in self.results if r.time_to_first_audio is not None]

    def cores(self, part: str) -> float:
        """Mean CPU of ``part`` over the rounds (from the first INVITE to the last call's
        end), in cores: 1.0 is one core busy all along; this machine has ``nproc``."""
        cpu = sum(getattr(b, part).cpu_s - getattr(a, part).cpu_s for a, b in self.windows)
        wall = sum(b.at - a.at for a, b in self.windows)
        return cpu / wall if wall > 0 else math.nan

    def machine_pct(self) -> float:
        busy = sum(b.machine[0] - a.machine[0] for a, b in self.windows)
        total = sum(b.machine[1] - a.machine[1] for a, b in self.windows)
        return 100 * busy / total if total > 0 else math.nan

    def other_cores(self) -> float:
        """The machine's busy CPU that none of the measured parties used (other people's
        processes on a shared machine, the kernel's softirq work for the veth pair...)."""
        busy = sum(b.machine[0] - a.machine[0] for a, b in self.windows)
        wall = sum(b.at - a.at for a, b in self.windows)
        if wall <= 0:
            return math.nan
        ours = sum(self.cores(part) for part in ("worker", "servers", "callers", "probe"))
        return busy / wall - ours

    def per_call(self, peak: int, idle: int) -> float:
        """MB the worker tree grew per call in progress at its peak.  Each call is one job
        process, so the calls in progress are the processes beyond the idle tree's."""
        extra = max(1, self.peak.procs - self.before.procs)
        return round((peak - idle) / MB / extra, 1)

    def max_overlap(self) -> int:
        """Most calls answered and not yet ended at the same moment."""
        edges = [(r.answered_at, 1) for r in self.results if r.answered_at and r.ended_at]
        edges += [(r.ended_at, -1) for r in self.results if r.answered_at and r.ended_at]
        best = now = 0
        for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
            now += step
            best = max(best, now)
        return best

    def outcomes(self) -> dict[str, int]:
        return dict(
            Counter(f"{r.final_status or 'none'}/{r.ended_by or 'gave-up'}" for r in self.results)
        )

    def summary(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "rounds": self.rounds,
            "placed": self.placed,
            "answered": self.answered,
            "answered_fraction": round(self.answered / self.placed, 3) if self.placed else 0.0,
            "refused": self.refused,
            "unanswered": self.unanswered,
            "answered_without_greeting": self.no_greeting,
            "outcomes": self.outcomes(),
            "max_overlap": self.max_overlap(),
            "invite_to_200ok": summary_ms(self.answer_s()),
            "200ok_to_greeting_audio": summary_ms(self.greeting_s()),
            "worker_cores": round(self.cores("worker"), 3),
            "servers_cores": round(self.cores("servers"), 3),
            "callers_cores": round(self.cores("callers"), 3),
            "probe_cores": round(self.cores("probe"), 3),
            "other_cores": round(self.other_cores(), 3),
            "machine_cpu_pct": round(self.machine_pct(), 1),
            "worker_cpu_s_per_call": round(self.level_cpu_s / self.placed, 3)
            if self.placed
            else math.nan,
            "worker_rss_before_mb": round(self.before.rss / MB, 1),
            "worker_rss_peak_mb": round(self.peak.rss / MB, 1),
            "worker_pss_before_mb": round(self.before.pss / MB, 1),
            "worker_pss_peak_mb": round(self.peak.pss / MB, 1),
            "worker_procs_before": self.before.procs,
            "worker_procs_peak": self.peak.procs,
            "rss_per_call_mb": self.per_call(self.peak.rss, self.before.rss),
            "pss_per_call_mb": self.per_call(self.peak.pss, self.before.pss),
            "settle_timeouts": self.settle_timeouts,
            "worker_log": self.worker_log,
        }


@dataclass(frozen=True)
class Target:
    lab: Lab
    worker_log: Path
    meter: Meter
    probe: MemoryProbe
    idle_procs: int  # processes in the worker's tree when it has no call

    async def rooms(self) -> int:
        c = self.lab.c
        url = c.livekit_url.replace("ws://", "http://")
        async with api.LiveKitAPI(url, c.api_key, c.api_secret) as lk:
            return len((await lk.room.list_rooms(api.ListRoomsRequest())).rooms)

    async def settle(self, timeout: float = SETTLE_TIMEOUT) -> bool:
        """Wait until the server lists no room and the worker is back to its idle
        processes; False if that did not happen within ``timeout`` s."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while loop.time() < end:
            procs = tree_usage(self.meter.worker_pid).procs
            if procs <= self.idle_procs and await self.rooms() == 0:
                return True
            await asyncio.sleep(0.2)
        return False


async def one_call(lab: Lab, number: str, *, hangup: float, timeout: float) -> CallResult:
    return await place_call(
        sip_host=lab.c.server_ip, sip_port=lab.c.sip_port, to_number=lab.c.inbound_number,
        from_number=number, local_ip=lab.c.phone_ip, hangup=hangup, timeout=timeout,
    )  # fmt: skip


async def run_level(
    target: Target, calls: int, rounds: int, *, hangup: float, timeout: float, first: int
) -> Level:
    level = Level(calls)
    if not await target.settle():
        level.settle_timeouts += 1
    idle = target.meter.take(pss=True)
    level.before, level.before_at = idle.worker, idle.at
    start_cpu = level.before.cpu_s
    for r in range(rounds):
        numbers = [f"+44207{first + r * calls + i:07d}" for i in range(calls)]
        a = target.meter.take()
        results = await asyncio.gather(
            *(one_call(target.lab, n, hangup=hangup, timeout=timeout) for n in numbers)
        )
        b = target.meter.take()
        level.results += results
        level.windows.append((a, b))
        level.peak |= target.probe.peak(a.at, b.at)
        level.rounds += 1
        if not await target.settle():
            level.settle_timeouts += 1
    end = target.meter.take()
    level.level_cpu_s = end.worker.cpu_s - start_cpu
    level.worker_log = worker_log_summary(target.worker_log, level.before_at, end.at)
    return level


# -- what the worker said ---------------------------------------------------------------------
_WORKER_EVENTS = {
    "no warmed process available for job, waiting for one to be created": "no_warm_process",
    "error initializing process": "process_init_failed",
    "VAD inference is slower than realtime": "vad_slower_than_realtime",
    "received job request": "jobs",
}


def worker_log_summary(path: Path, start: float, end: float) -> dict[str, Any]:
    """Counts of the worker log lines that explain load (see ``_WORKER_EVENTS``) between
    ``start`` and ``end``, and how long its job processes took to initialise."""
    counts = dict.fromkeys(_WORKER_EVENTS.values(), 0)
    init_s: list[float] = []
    with suppress(OSError), path.open(encoding="utf-8", errors="replace") as log:
        for line in log:
            with suppress(ValueError, KeyError, TypeError):
                entry = json.loads(line)
                at = datetime.fromisoformat(entry["timestamp"]).timestamp()
                if not start <= at <= end:
                    continue
                message = entry["message"]
                if message in _WORKER_EVENTS:
                    counts[_WORKER_EVENTS[message]] += 1
                elif message == "process initialized":
                    init_s.append(float(entry["elapsed_time"]))
    return {
        **counts,
        "process_init_s_p50": round(percentile(init_s, 50), 2),
        "process_init_s_max": round(max(init_s), 2) if init_s else math.nan,
    }


# -- the knee ------------------------------------------------------------------------------
def _degraded(p95: float, base: float) -> bool:
    # Twice the single-call p95, and at least half a second worse: below that, what
    # moves is noise of a shared 2-core machine, not a caller's experience.
    return p95 > max(2 * base, base + 0.5)


def find_knee(levels: Sequence[Level]) -> dict[str, Any]:
    """The first level where the answered fraction drops below 1 or a p95 latency
    (answer or greeting) degrades against the lowest level."""
    if not levels:
        return {"level": None, "reason": "no levels"}
    base = levels[0]
    base_answer = percentile(base.answer_s(), 95)
    base_greeting = percentile(base.greeting_s(), 95)
    for level in levels:
        reasons = []
        if level.answered < level.placed:
            reasons.append(f"answered {level.answered}/{level.placed}")
        p95a, p95g = percentile(level.answer_s(), 95), percentile(level.greeting_s(), 95)
        if _degraded(p95a, base_answer):
            reasons.append(f"p95 answer {p95a * 1000:.0f} ms vs {base_answer * 1000:.0f} ms")
        if _degraded(p95g, base_greeting):
            reasons.append(f"p95 greeting {p95g * 1000:.0f} ms vs {base_greeting * 1000:.0f} ms")
        if reasons:
            return {"level": level.calls, "reason": "; ".join(reasons)}
    return {"level": None, "reason": f"no degradation up to {levels[-1].calls} calls"}


# -- output --------------------------------------------------------------------------------
def _pair(a: float, b: float) -> str:
    return f"{a:.0f} / {b:.0f}"


def _rows(head: str, rows: Iterable[str]) -> str:
    return "\n".join([head, "-" * len(head), *rows])


def calls_table(levels: Iterable[Level]) -> str:
    """What the callers saw."""
    head = (
        f"{'calls':>5} {'rounds':>6} {'answered':>9} {'refused':>7} {'unanswered':>10} "
        f"{'max up at once':>14} {'INVITE->200 p50/p95 ms':>23} {'200->greeting p50/p95 ms':>25}"
    )
    rows = []
    for lv in levels:
        s = lv.summary()
        a, g = s["invite_to_200ok"], s["200ok_to_greeting_audio"]
        rows.append(
            f"{lv.calls:>5} {lv.rounds:>6} {f'{lv.answered}/{lv.placed}':>9} {lv.refused:>7} "
            f"{lv.unanswered:>10} {s['max_overlap']:>14} "
            f"{_pair(a['p50_ms'], a['p95_ms']):>23} {_pair(g['p50_ms'], g['p95_ms']):>25}"
        )
    return _rows(head, rows)


def resources_table(levels: Iterable[Level]) -> str:
    """What it cost: CPU in cores (mean over the rounds), memory of the worker tree."""
    head = (
        f"{'calls':>5} {'worker':>6} {'servers':>7} {'callers':>7} {'probe':>5} {'other':>5} "
        f"{'machine':>7} {'CPU-s/call':>10} {'RSS MB idle/peak':>16} {'PSS MB idle/peak':>16} "
        f"{'MB/call rss/pss':>15} {'procs':>5}"
    )
    rows = []
    for lv in levels:
        s = lv.summary()
        rows.append(
            f"{lv.calls:>5} {s['worker_cores']:>6.2f} {s['servers_cores']:>7.2f} "
            f"{s['callers_cores']:>7.2f} {s['probe_cores']:>5.2f} {s['other_cores']:>5.2f} "
            f"{s['machine_cpu_pct']:>6.0f}% {s['worker_cpu_s_per_call']:>10.2f} "
            f"{_pair(s['worker_rss_before_mb'], s['worker_rss_peak_mb']):>16} "
            f"{_pair(s['worker_pss_before_mb'], s['worker_pss_peak_mb']):>16} "
            f"{_pair(s['rss_per_call_mb'], s['pss_per_call_mb']):>15} {s['worker_procs_peak']:>5}"
        )
    return _rows(head, rows)


def worker_table(levels: Iterable[Level]) -> str:
    """What the worker logged while it took the level's calls."""
    head = (
        f"{'calls':>5} {'jobs':>5} {'no warm process':>15} {'init failed':>11} "
        f"{'VAD behind':>10} {'process init s p50/max':>22}"
    )
    rows = []
    for lv in levels:
        w = lv.worker_log
        rows.append(
            f"{lv.calls:>5} {w.get('jobs', 0):>5} {w.get('no_warm_process', 0):>15} "
            f"{w.get('process_init_failed', 0):>11} {w.get('vad_slower_than_realtime', 0):>10} "
            f"{w.get('process_init_s_p50', math.nan):>11.1f} / "
            f"{w.get('process_init_s_max', math.nan):<8.1f}"
        )
    return _rows(head, rows)


def chart(figures: dict[str, Any], path: Path) -> None:
    """The PNG, from what scale.json holds (``--replot`` redraws it without calling)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator

    levels: list[dict[str, Any]] = figures["levels"]
    x = [lv["calls"] for lv in levels]
    cpus = figures["machine"]["cpus"]
    fig, (lat, mem) = plt.subplots(2, 1, figsize=(9, 9.5), sharex=True)
    for key, name, color in (
        ("invite_to_200ok", "INVITE → 200 OK (time to answer)", "tab:blue"),
        ("200ok_to_greeting_audio", "200 OK → greeting audio", "tab:orange"),
    ):
        lat.plot(x, [lv[key]["p50_ms"] for lv in levels], "o-", color=color,
                 label=f"{name}, p50")  # fmt: skip
        lat.plot(x, [lv[key]["p95_ms"] for lv in levels], "s--", color=color,
                 label=f"{name}, p95")  # fmt: skip
    at_bottom = lat.get_xaxis_transform()
    for lv in levels:
        lat.text(lv["calls"], 0.02, f"{lv['answered']}/{lv['placed']}", fontsize=7,
                 ha="center", va="bottom", color="dimgray", transform=at_bottom)  # fmt: skip
    lat.set_yscale("log")
    lowest = min(
        lv[k]["p50_ms"] for lv in levels for k in ("invite_to_200ok", "200ok_to_greeting_audio")
    )
    lat.set_ylim(bottom=lowest / 2.5)  # room for the answered counts under the lines
    lat.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    lat.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    lat.set_ylabel("latency at the caller (ms, log scale)")
    lat.set_title(f"One keyless agent worker on {cpus} CPUs: simultaneous SIP calls\n"
                  "(along the bottom: calls answered / placed)", fontsize=11)  # fmt: skip
    lat.grid(True, which="both", alpha=0.3)
    lat.legend(fontsize=8, loc="upper left")

    mem.plot(x, [lv["worker_rss_peak_mb"] for lv in levels], "s--", color="tab:olive",
             label="RSS summed over processes, peak (shared pages counted again)")  # fmt: skip
    mem.plot(x, [lv["worker_pss_peak_mb"] for lv in levels], "o-", color="tab:green",
             label="PSS (real footprint), peak")  # fmt: skip
    mem.plot(x, [lv["worker_pss_before_mb"] for lv in levels], ":", color="tab:gray",
             label="PSS, idle before the level")  # fmt: skip
    mem.set_ylim(bottom=0)
    mem.set_ylabel("worker process tree memory (MB)")
    mem.set_xlabel("simultaneous calls")
    mem.grid(True, alpha=0.3)
    cpu = mem.twinx()
    cores = [lv["worker_cores"] for lv in levels]
    cpu.plot(x, cores, "^-", color="tab:red",
             label="worker tree CPU, mean over the rounds (cores, right axis)")  # fmt: skip
    cpu.set_ylabel("CPU (cores)", color="tab:red")
    cpu.set_ylim(0, max(cpus, *cores) * 1.05)
    handles, labels = mem.get_legend_handles_labels()
    more_handles, more_labels = cpu.get_legend_handles_labels()
    mem.legend(handles + more_handles, labels + more_labels, fontsize=8,
               loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)  # fmt: skip
    knee = figures["knee"]["level"]
    if knee is not None:
        for ax in (lat, mem):
            ax.axvline(knee, color="tab:red", alpha=0.25, linewidth=3)
        lat.text(knee, 0.2, f" knee: {knee}", transform=lat.get_xaxis_transform(),
                 color="tab:red", ha="left", va="bottom")  # fmt: skip
    mem.set_xticks(x)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine() -> dict[str, Any]:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.processor(),
    )  # fmt: skip
    return {
        "cpus": psutil.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "livekit_agents": version("livekit-agents"),
    }


# -- main ------------------------------------------------------------------------------------
def rounds_for(calls: int, calls_per_level: int, min_rounds: int) -> int:
    return max(min_rounds, math.ceil(calls_per_level / calls))


async def run(lab: Lab, args: argparse.Namespace) -> list[Level]:
    by_name = {p.name: p.pid for p in lab.procs.load()}
    server_pids = [by_name[n] for n in SERVERS if n in by_name]
    worker = by_name["agent"]
    with MemoryProbe(worker) as probe:
        meter = Meter(worker, tuple(server_pids), probe.pid)
        # One call first, not counted: warms caches the first real caller should not pay for.
        await one_call(lab, "+442070000000", hangup=args.hangup, timeout=args.timeout)
        log = lab.procs.logs / "agent.log"
        target = Target(lab, log, meter, probe, idle_procs=await _idle_procs(worker))
        levels = []
        first = 1
        for calls in args.levels:
            rounds = rounds_for(calls, args.calls_per_level, args.min_rounds)
            print(f"bench.scale: {calls} simultaneous calls x {rounds} rounds", file=sys.stderr)
            level = await run_level(
                target, calls, rounds, hangup=args.hangup, timeout=args.timeout, first=first
            )
            first += calls * rounds
            print(f"  {level.answered}/{level.placed} answered, outcomes {level.outcomes()}",
                  file=sys.stderr)  # fmt: skip
            levels.append(level)
    return levels


async def _idle_procs(worker_pid: int, timeout: float = 30.0) -> int:
    """The worker tree's process count once it has stopped changing (idle pool warm)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    last, stable_since = -1, loop.time()
    while loop.time() < end:
        n = tree_usage(worker_pid).procs
        if n != last:
            last, stable_since = n, loop.time()
        elif loop.time() - stable_since >= 2.0:
            return n
        await asyncio.sleep(0.2)
    return last


def print_report(levels: Sequence[Level], knee: dict[str, Any]) -> None:
    print(f"\nOne keyless agent worker, {psutil.cpu_count()} CPUs: simultaneous calls\n")
    print(calls_table(levels))
    print("\nCPU in cores, mean over the rounds (worker: its process tree; servers:")
    print("livekit-server + livekit-sip + redis; callers: this process and its sipp; probe:")
    print("the memory sampler; other: the rest of the machine); CPU-s/call: worker tree over")
    print("the whole level; memory: the worker tree\n")
    print(resources_table(levels))
    print("\nWhat the worker logged during each level\n")
    print(worker_table(levels))
    print(f"\nknee: {knee['level'] or 'none'} ({knee['reason']})")


def _call_fields(result: CallResult) -> dict[str, Any]:
    return {k: v for k, v in asdict(result).items() if k not in ("arrivals", "sipp_log_tail")}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--levels", default="1,5,10,20",
                        type=lambda s: [int(x) for x in s.split(",") if x])  # fmt: skip
    parser.add_argument("--calls-per-level", type=int, default=20,
                        help="calls per level at least (in rounds of the level)")  # fmt: skip
    parser.add_argument("--min-rounds", type=int, default=2)
    parser.add_argument("--hangup", type=float, default=1.0,
                        help="seconds after the greeting audio starts")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=30.0, help="per call, in seconds")
    parser.add_argument("--replot", action="store_true",
                        help="redraw scale.png from scale.json; place no call")  # fmt: skip
    args = parser.parse_args()
    if any(n < 1 for n in args.levels):
        parser.error("levels must be positive")
    if args.replot:
        chart(json.loads((OUT / "scale.json").read_text()), OUT / "scale.png")
        return 0
    lab = private_lab()
    try:
        wait_for_no_lab(lab.c)
        lab.up(agent_mode="start")
        levels = asyncio.run(run(lab, args))
    except LabError as e:
        print(f"bench.scale: {e}", file=sys.stderr)
        return 1
    finally:
        lab.down()
    knee = find_knee(levels)
    print_report(levels, knee)
    OUT.mkdir(exist_ok=True)
    figures = {
        "machine": machine(),
        "servers": {"livekit-server": "v1.13.5", "livekit-sip": "v1.8.0"},
        "hangup_after_greeting_s": args.hangup,
        "levels": [lv.summary() for lv in levels],
        "knee": knee,
        "calls": [{"level": lv.calls, **_call_fields(r)} for lv in levels for r in lv.results],
    }
    (OUT / "scale.json").write_text(json.dumps(figures, indent=1, default=str))
    chart(figures, OUT / "scale.png")
    print(f"wrote {OUT / 'scale.json'} and {OUT / 'scale.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
