"""Markdown for docs/performance.md: the tables, and sentences read off the measured figures."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence

from clients import ClientResult
from profiling import Profile
from scenario import PacingResult
from stats import Row


def fmt(value: float, digits: int = 1) -> str:
    return "–" if math.isnan(value) else f"{value:,.{digits}f}"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rule = "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def busy_cores(row: Row) -> float:
    """CPU-seconds of server, upstream and load generator per wall second of the server run."""
    costs = row.costs
    total = costs.server_cpu + costs.upstream_cpu + costs.loadgen_cpu
    return total / row.server.wall if row.server.wall else math.nan


def level_table(result: PacingResult) -> str:
    header = (
        "C",
        "requests",
        "errors (server / direct)",
        "TTFT p50 direct → server (ms)",
        "added TTFT p50 (ms)",
        "added TTFT p99 (ms)",
        "answers/s via server (direct)",
        "relayed chunks/s",
        "server peak RSS (MiB)",
        "server CPU-s / 1k req",
    )
    rows = [
        (
            f"{row.concurrency:,}",
            f"{row.server.requests:,}",
            f"{row.server.errors:,} / {row.direct.errors:,}",
            f"{fmt(row.direct.ttft_p50 * 1000)} → {fmt(row.server.ttft_p50 * 1000)}",
            fmt(row.added_p50_ms),
            fmt(row.added_p99_ms),
            f"{fmt(row.server.per_second)} ({fmt(row.direct.per_second)})",
            f"{row.server.chunks_per_second:,.0f}",
            fmt(row.costs.server_peak_rss_mib, 0),
            fmt(row.per_1k(row.costs.server_cpu), 2),
        )
        for row in result.rows
    ]
    return table(header, rows)


def cpu_table(results: Sequence[PacingResult]) -> str:
    header = (
        "pacing",
        "C",
        "server",
        "upstream",
        "load generator",
        "upstream, direct run",
        "load generator, direct run",
        "busy cores (of 2)",
    )
    rows = [
        (
            result.pacing.name,
            f"{row.concurrency:,}",
            fmt(row.per_1k(row.costs.server_cpu), 2),
            fmt(row.per_1k(row.costs.upstream_cpu), 2),
            fmt(row.per_1k(row.costs.loadgen_cpu), 2),
            fmt(row.per_1k(row.direct_costs.upstream_cpu, row.direct.requests), 2),
            fmt(row.per_1k(row.direct_costs.loadgen_cpu, row.direct.requests), 2),
            fmt(busy_cores(row), 2),
        )
        for result in results
        for row in result.rows
    ]
    return table(header, rows)


def client_table(results: Sequence[ClientResult]) -> str:
    header = (
        "client",
        "C",
        "requests",
        "errors",
        "wall (s)",
        "answers/s",
        "client CPU-s / 1k req",
        "upstream CPU-s / 1k req",
        "client peak RSS (MiB)",
    )
    rows = [
        (
            result.client,
            f"{result.concurrency:,}",
            f"{result.requests:,}",
            f"{result.errors:,}",
            fmt(result.wall, 2),
            fmt(result.per_second),
            fmt(result.cpu_per_1k, 2),
            fmt(result.upstream_cpu / result.requests * 1000, 2),
            fmt(result.max_rss_mib, 0),
        )
        for result in results
    ]
    return table(header, rows)


def error_lines(results: Sequence[PacingResult]) -> list[str]:
    """One bullet per distinct error seen by the load generator, with its count."""
    lines: list[str] = []
    for result in results:
        for row in result.rows:
            sides = [("via server", row.server), ("direct", row.direct)]
            sides += [(f"via {peer.name}", peer.summary) for peer in row.peers]
            for side, summary in sides:
                kinds: Counter[str] = summary.error_kinds
                lines += [
                    f"- {result.pacing.name}, C={row.concurrency}, {side}: {count}× `{kind}`"
                    for kind, count in kinds.most_common(5)
                ]
    return lines


def server_log_lines(log: str, limit: int = 12) -> list[str]:
    """The server's stderr, distinct lines with counts (timestamps cut off)."""
    counts: Counter[str] = Counter()
    for line in log.splitlines():
        text = line.split(" ", 2)[-1] if line[:4].isdigit() else line
        if text.strip():
            counts[text.strip()[:200]] += 1
    return [f"    {count}× {text}" for text, count in counts.most_common(limit)]


def profile_tables(profile: Profile) -> list[str]:
    """Own time by component and the costliest functions, as shares of all profiled time."""

    def share(seconds: float) -> str:
        return fmt(seconds / profile.total * 100 if profile.total else math.nan)

    components = table(
        ("component", "own time (%)"), [(name, share(own)) for name, own in profile.components]
    )
    functions = table(
        ("function", "calls", "own time (%)", "µs per call"),
        [
            (f"`{name}`", f"{calls:,}", share(own), fmt(own / calls * 1e6 if calls else math.nan))
            for name, calls, own in profile.functions
        ],
    )
    return [components, functions]
