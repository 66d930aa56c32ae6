"""One pacing of the end-to-end bench: each concurrency level through the server, then direct."""

from __future__ import annotations

import time
from dataclasses import dataclass

from load import load_level
from pool import run_async
from procs import Child, api_server, bench_upstream, cpu_seconds, peak_rss_mib, reset_peak_rss
from stats import Costs, Row, Summary, summarize

FRAMES = 100
WARMUP_CONCURRENCY = 50  # one wave, so a paced warm-up takes one answer's time
WARMUP_REQUESTS = 50
SETTLE = 0.3  # seconds for the server's background session deletions to finish
LEVEL_DEADLINE = 90.0  # seconds one side of one level may take at most


@dataclass(frozen=True, slots=True)
class Pacing:
    """How the bench upstream paces its frames, and the (concurrency, requests) levels."""

    name: str
    pace_ms: float
    plan: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class PacingResult:
    pacing: Pacing
    rows: list[Row]
    server_log: str  # the server's stderr while this pacing ran
    server_exit: int | None  # the server's exit code if it exited by itself
    rss_reset: bool  # VmHWM was reset before each level (else it is the peak since start)


@dataclass(frozen=True, slots=True)
class Processes:
    server: Child
    server_url: str
    upstream: Child
    upstream_url: str


def _measure(procs: Processes, target: str, concurrency: int, count: int) -> tuple[Summary, Costs]:
    base = procs.server_url if target == "server" else procs.upstream_url
    server_before, upstream_before = cpu_seconds(procs.server.pid), cpu_seconds(procs.upstream.pid)
    own_before = time.process_time()
    batch = run_async(load_level(target, base, concurrency, count, LEVEL_DEADLINE))
    own = time.process_time() - own_before
    time.sleep(SETTLE)
    costs = Costs(
        server_cpu=cpu_seconds(procs.server.pid) - server_before,
        upstream_cpu=cpu_seconds(procs.upstream.pid) - upstream_before,
        loadgen_cpu=own,
        server_peak_rss_mib=peak_rss_mib(procs.server.pid),
    )
    return summarize(batch), costs


def _level(procs: Processes, concurrency: int, count: int, rss_reset: bool) -> Row:
    if rss_reset:
        reset_peak_rss(procs.server.pid)
    server, costs = _measure(procs, "server", concurrency, count)
    direct, direct_costs = _measure(procs, "direct", concurrency, count)
    return Row(concurrency, server, direct, costs, direct_costs)


def _warm_up(procs: Processes) -> None:
    for target in ("server", "direct"):
        _measure(procs, target, WARMUP_CONCURRENCY, WARMUP_REQUESTS)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"  {text}", flush=True)


def run_pacing(pacing: Pacing, progress: bool = True) -> PacingResult:
    """Start a bench upstream and a server for this pacing, run every level, stop both."""
    rows: list[Row] = []
    clock = time.monotonic()
    with (
        bench_upstream(FRAMES, pacing.pace_ms) as (upstream, upstream_url),
        api_server(upstream_url) as (server, server_url),
    ):
        procs = Processes(server, server_url, upstream, upstream_url)
        _warm_up(procs)
        _say(progress, f"started and warmed up in {time.monotonic() - clock:.1f} s")
        rss_reset = reset_peak_rss(server.pid)
        for concurrency, count in pacing.plan:
            clock = time.monotonic()
            row = _level(procs, concurrency, count, rss_reset)
            rows.append(row)
            _say(
                progress,
                f"C={concurrency}: {count} requests, {row.server.errors} errors through the "
                f"server, {row.direct.errors} direct, {time.monotonic() - clock:.1f} s",
            )
        clock = time.monotonic()
    _say(progress, f"stopped in {time.monotonic() - clock:.1f} s")
    return PacingResult(pacing, rows, server.log, server.exited_by_itself, rss_reset)
