"""The end-to-end bench session: one bench upstream, this server and any peers, every level.

One bench upstream serves the whole session (its pacing is switched between pacings through
`POST /bench/config`, so a peer pointed at its port keeps working), and one server of ours.
Each level runs through this server, then through each peer, then against the upstream
directly, which is the baseline of the added time to first token.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
from dataclasses import dataclass

from load import load_level
from pool import run_async
from procs import Child, cpu_seconds, peak_rss_mib, reset_peak_rss
from stats import Costs, Row, Side, Summary, summarize
from targets import Target

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
    rss_reset: bool  # VmHWM was reset before each level (else it is the peak since start)


@dataclass(frozen=True, slots=True)
class Processes:
    """What runs during a session: our server, the bench upstream, and the peers."""

    server: Child
    ours: Target
    upstream: Child
    upstream_url: str
    peers: tuple[Target, ...] = ()


def configure_upstream(url: str, pace_ms: float, frames: int = FRAMES) -> None:
    """Switch the running bench upstream to another pacing."""
    query = f"?pace_ms={pace_ms}&frames={frames}"
    request = urllib.request.Request(url + "/bench/config" + query, method="POST")
    with urllib.request.urlopen(request, timeout=10) as reply:
        applied = json.loads(reply.read())
    if applied["frames"] != frames or not math.isclose(applied["pace_ms"], pace_ms):
        raise RuntimeError(f"the bench upstream did not take the pacing: {applied}")


def _cpu(pid: int | None) -> float:
    return cpu_seconds(pid) if pid is not None else math.nan


def _measure(
    procs: Processes, target: Target | None, concurrency: int, count: int
) -> tuple[Summary, Costs]:
    """One side of a level: through `target`, or direct when it is None."""
    pid = target.pid if target is not None else procs.server.pid
    before, upstream_before = _cpu(pid), cpu_seconds(procs.upstream.pid)
    own_before = time.process_time()
    if target is None:
        level = load_level("direct", procs.upstream_url, concurrency, count, LEVEL_DEADLINE)
    else:
        level = load_level(
            "server", target.base, concurrency, count, LEVEL_DEADLINE, target.model, target.key
        )
    batch = run_async(level)
    own = time.process_time() - own_before
    time.sleep(SETTLE)
    costs = Costs(
        server_cpu=_cpu(pid) - before,
        upstream_cpu=cpu_seconds(procs.upstream.pid) - upstream_before,
        loadgen_cpu=own,
        server_peak_rss_mib=peak_rss_mib(pid) if pid is not None else math.nan,
    )
    return summarize(batch), costs


def _level(procs: Processes, concurrency: int, count: int, rss_reset: bool) -> Row:
    if rss_reset:
        reset_peak_rss(procs.server.pid)
    server, costs = _measure(procs, procs.ours, concurrency, count)
    peers: list[Side] = []
    for peer in procs.peers:
        if rss_reset and peer.pid is not None:
            reset_peak_rss(peer.pid)
        summary, peer_costs = _measure(procs, peer, concurrency, count)
        peers.append(Side(peer.name, summary, peer_costs))
    direct, direct_costs = _measure(procs, None, concurrency, count)
    return Row(concurrency, server, direct, costs, direct_costs, tuple(peers))


def _warm_up(procs: Processes) -> None:
    for target in (procs.ours, *procs.peers, None):
        _measure(procs, target, WARMUP_CONCURRENCY, WARMUP_REQUESTS)


def _say(progress: bool, text: str) -> None:
    if progress:
        print(f"  {text}", flush=True)


def _errors(row: Row) -> str:
    sides = [f"{row.server.errors} through this server"]
    sides += [f"{side.summary.errors} through {side.name}" for side in row.peers]
    return ", ".join([*sides, f"{row.direct.errors} direct"])


def run_pacing(procs: Processes, pacing: Pacing, progress: bool = True) -> PacingResult:
    """Switch the upstream to this pacing, warm every target up, run every level."""
    clock = time.monotonic()
    configure_upstream(procs.upstream_url, pacing.pace_ms)
    _warm_up(procs)
    _say(progress, f"warmed up in {time.monotonic() - clock:.1f} s")
    rss_reset = reset_peak_rss(procs.server.pid)
    rows: list[Row] = []
    for concurrency, count in pacing.plan:
        clock = time.monotonic()
        row = _level(procs, concurrency, count, rss_reset)
        rows.append(row)
        _say(
            progress,
            f"C={concurrency}: {count} requests each, errors: {_errors(row)}; "
            f"{time.monotonic() - clock:.1f} s",
        )
    return PacingResult(pacing, rows, rss_reset)
