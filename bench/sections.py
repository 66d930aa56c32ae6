"""Markdown sections of a session: servers side by side, the backlog check, the py-spy profile."""

from __future__ import annotations

from collections.abc import Sequence

from backlog import CONNECTS, WINDOW, Burst, somaxconn
from report import fmt, table
from scenario import PacingResult
from spy import SpyProfile
from stats import Costs, Row, Summary
from targets import OURS


def _side(row: Row, name: str, summary: Summary, costs: Costs) -> tuple[str, ...]:
    return (
        f"{row.concurrency:,}",
        name,
        f"{summary.errors:,} / {summary.requests:,}",
        fmt(row.added_ms(summary, 50)),
        fmt(row.added_ms(summary, 99)),
        fmt(summary.per_second),
        f"{summary.chunks_per_second:,.0f}",
        fmt(costs.server_peak_rss_mib, 0),
        fmt(row.per_1k(costs.server_cpu, summary.requests), 2),
    )


def side_by_side(result: PacingResult) -> str:
    """Each level through this server, each peer, and direct (the baseline), in one table."""
    header = (
        "C",
        "through",
        "errors / requests",
        "added TTFT p50 (ms)",
        "added TTFT p99 (ms)",
        "requests/s",
        "relayed chunks/s",
        "peak RSS (MiB)",
        "server CPU-s / 1k req",
    )
    rows: list[tuple[str, ...]] = []
    for row in result.rows:
        rows.append(_side(row, f"**{OURS}**", row.server, row.costs))
        rows += [_side(row, side.name, side.summary, side.costs) for side in row.peers]
        direct = row.direct
        rows.append(
            (
                f"{row.concurrency:,}",
                "*fake, direct*",
                f"{direct.errors:,} / {direct.requests:,}",
                f"TTFT {fmt(direct.ttft_p50 * 1000)}",
                f"TTFT {fmt(direct.ttft_p99 * 1000)}",
                fmt(direct.per_second),
                f"{direct.chunks_per_second:,.0f}",
                "",
                "",
            )
        )
    return table(header, rows)


def backlog_section(bursts: Sequence[Burst]) -> list[str]:
    if not bursts:
        return []
    cap = somaxconn()
    header = (
        "server",
        "connects",
        f"connected within {WINDOW:.0f} s",
        "refused",
        "failed (reset, timeout, no status)",
        "answered",
        "connect p99 (ms)",
        "all answered after (s)",
    )
    rows = [
        (
            b.name,
            f"{b.attempts:,}",
            f"{b.connected_in_window:,}",
            f"{b.refused:,}",
            f"{b.failed:,}",
            f"{b.answered:,}",
            fmt(b.connect_p99_ms),
            fmt(b.wall, 2),
        )
        for b in bursts
    ]
    return [
        "### Backlog: 1,000 connects at once",
        f"{CONNECTS:,} TCP connections opened at the same moment from the load generator, each "
        "sending one minimal `GET` (`/ping` here, the probe path for a peer) with "
        "`Connection: close` and reading the status line. A listen backlog too short shows as "
        f"connects later than {WINDOW:.0f} s (a dropped SYN is retried after about 1 s), refused "
        f"or reset. The kernel caps every backlog at `net.core.somaxconn` = {cap or '?'}; this "
        "server asks uvicorn for 4,096.",
        table(header, rows),
    ]


def _shares(rows: Sequence[tuple[str, float]], label: str) -> str:
    return table((label, "share of samples (%)"), [(f"`{n}`", fmt(s * 100)) for n, s in rows])


def spy_section(spied: SpyProfile | None) -> list[str]:
    if spied is None:
        return []
    title = "## Where the time goes (py-spy)"
    if spied.error or spied.summary is None or not spied.samples:
        return [title, f"py-spy could not profile the server: `{spied.error or 'no samples'}`."]
    summary = spied.summary
    return [
        title,
        f"py-spy (`record --gil --format raw`, {spied.rate} samples/s) on this "
        f"server during one back-to-back level, C={spied.concurrency}, {summary.requests:,} "
        f"requests ({summary.errors:,} errors, {fmt(summary.wall)} s, the server spent "
        f"{fmt(spied.cpu)} CPU-s): {spied.samples:,} samples of the thread holding the GIL. "
        "py-spy pauses the server for each sample, which slows it; read the samples as shares "
        "of the Python side's work, not as seconds. C code called with the GIL held, such "
        "as a socket's `write` system call, counts toward the Python function that called it; "
        "C code run without it (SQLite on the store's thread, parts of libcurl) is not sampled.",
        "**Own time by package** (the innermost frame's package):",
        _shares(spied.packages, "package"),
        "**Own time by function** (the innermost frame):",
        _shares(spied.own, "function"),
        "**Inclusive time of the server's own functions** (samples with the function anywhere "
        "on the stack):",
        _shares(spied.ours, "function"),
    ]


def pinning_text(pinned: bool, peer_notes: Sequence[str]) -> str:
    if pinned:
        where = (
            "The bench upstream and the load generator (this bench process) run on core 0, the "
            "server measured on core 1 (`sched_setaffinity` before each child starts, so all "
            "its threads inherit it); a peer's threads are pinned to core 1 for the run and "
            "restored afterwards. Servers are measured one after another, so each has core 1 "
            "to itself while it is measured (the others sit idle)."
        )
    else:
        where = "Nothing is pinned (`--no-pin`, or fewer than 2 cores are available)."
    peers = "".join(f"\n- peer {note}" for note in peer_notes)
    return where + peers
