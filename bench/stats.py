"""Summaries of one load level: percentiles, rates, error counts, and process costs."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from load import Sample
from pool import Batch


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """One side (through the server, or direct) of one load level."""

    requests: int
    errors: int
    answers: int  # successful answers
    error_kinds: Counter[str]
    ttft_p50: float  # seconds
    ttft_p99: float
    headers_p50: float  # seconds to the (completion) response headers
    wall: float
    chunks: int

    @property
    def per_second(self) -> float:
        """Successful answers per second."""
        return self.answers / self.wall if self.wall else math.nan

    @property
    def chunks_per_second(self) -> float:
        return self.chunks / self.wall if self.wall else math.nan


def summarize(batch: Batch[Sample]) -> Summary:
    kinds: Counter[str] = Counter(s.error for s in batch.results if s.error is not None)
    if batch.unfinished:
        kinds["not finished before the level's deadline"] += batch.unfinished
    ok = [s for s in batch.results if s.ok]
    ttfts = [s.ttft for s in ok if s.ttft is not None]
    return Summary(
        requests=len(batch.results) + batch.unfinished,
        errors=sum(kinds.values()),
        answers=len(ok),
        error_kinds=kinds,
        ttft_p50=percentile(ttfts, 50),
        ttft_p99=percentile(ttfts, 99),
        headers_p50=percentile([s.headers for s in ok if s.headers is not None], 50),
        wall=batch.wall,
        chunks=sum(s.chunks for s in batch.results),
    )


@dataclass(frozen=True, slots=True)
class Costs:
    """CPU-seconds spent by each process during a level, and the server's peak RSS."""

    server_cpu: float
    upstream_cpu: float
    loadgen_cpu: float
    server_peak_rss_mib: float = math.nan


@dataclass(frozen=True, slots=True)
class Side:
    """One level through a peer server: what the clients saw, and what the peer spent."""

    name: str
    summary: Summary
    costs: Costs  # server_cpu and server_peak_rss_mib are the peer's (NaN without its PID)


@dataclass(frozen=True, slots=True)
class Row:
    """One concurrency level of one pacing: through the server, peers, and the direct baseline."""

    concurrency: int
    server: Summary
    direct: Summary
    costs: Costs  # during the run through the server
    direct_costs: Costs  # during the direct run (server_cpu is the idle server's)
    peers: tuple[Side, ...] = ()

    @property
    def added_p50_ms(self) -> float:
        return (self.server.ttft_p50 - self.direct.ttft_p50) * 1000

    @property
    def added_p99_ms(self) -> float:
        return (self.server.ttft_p99 - self.direct.ttft_p99) * 1000

    def added_ms(self, summary: Summary, q: int) -> float:
        """Added time to first token of any side over direct, at p50 or p99."""
        if q == 50:
            return (summary.ttft_p50 - self.direct.ttft_p50) * 1000
        return (summary.ttft_p99 - self.direct.ttft_p99) * 1000

    def per_1k(self, seconds: float, requests: int | None = None) -> float:
        count = self.server.requests if requests is None else requests
        return seconds / count * 1000 if count else math.nan
