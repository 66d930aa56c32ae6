"""Sentences that read the measured figures: where the time goes, and what stands out."""

from __future__ import annotations

import math
from collections.abc import Sequence

from clients import ClientResult
from report import busy_cores, fmt
from scenario import PacingResult
from stats import Row


def _ms(seconds: float) -> str:
    return fmt(seconds * 1000)


def _name(result: PacingResult) -> str:
    return result.pacing.name.capitalize()


def per_request_cost(result: PacingResult) -> str:
    row = result.rows[0]
    server_ms = row.costs.server_cpu / row.server.requests * 1000
    chunks = row.server.chunks / row.server.requests if row.server.requests else math.nan
    per_chunk_us = row.costs.server_cpu / row.server.chunks * 1e6 if row.server.chunks else math.nan
    return (
        f"**Cost of one answer.** {_name(result)} at C={row.concurrency}, one streamed "
        f"answer ({fmt(chunks, 0)} relayed chunks) costs the server {fmt(server_ms, 2)} ms of "
        f"CPU, about {fmt(per_chunk_us, 0)} µs per relayed chunk, while the bench upstream "
        f"spends {fmt(row.costs.upstream_cpu / row.server.requests * 1000, 2)} ms producing it. "
        f"On an idle server the first token arrives {fmt(row.added_p50_ms)} ms (p50) / "
        f"{fmt(row.added_p99_ms)} ms (p99) later than when the same two upstream calls are made "
        "directly."
    )


def saturation(result: PacingResult) -> str:
    row = result.rows[-1]
    server_load = row.costs.server_cpu / row.server.wall if row.server.wall else math.nan
    best = max(result.rows, key=lambda r: r.server.per_second)
    state = "is CPU-bound" if server_load >= 0.85 else "is not CPU-bound"
    return (
        f"**Saturation.** {_name(result)}, the server peaks at "
        f"{fmt(best.server.per_second)} answers/s ({best.server.chunks_per_second:,.0f} "
        f"chunks/s) at C={best.concurrency}. At C={row.concurrency} the server process {state}: "
        f"it burns {fmt(server_load, 2)} CPU-s per second, where one core is 1.00; it is one "
        "asyncio process, so it cannot use the second core, which the load generator and the "
        f"upstream share (all three together: {fmt(busy_cores(row), 2)} of 2 cores busy)."
    )


def queueing(result: PacingResult) -> str:
    row = result.rows[-1]
    in_flight = min(row.concurrency, row.server.requests)
    rate = row.server.per_second
    lifetime = in_flight / rate if rate > 0 else math.nan
    share = row.server.ttft_p50 / lifetime if lifetime else math.nan
    text = (
        f"**First token under load.** {_name(result)} at C={row.concurrency}, the first token "
        f"takes {_ms(row.server.ttft_p50)} ms at p50 through the server (response headers after "
        f"{_ms(row.server.headers_p50)} ms: the server sends them once the upstream's "
        f"`response.created` has arrived) against {_ms(row.direct.ttft_p50)} ms direct, while "
        f"an answer spends about {_ms(lifetime)} ms in flight ({in_flight:,} in flight / "
        f"{fmt(row.server.per_second)} answers/s, Little's law). "
    )
    if share > 0.5 and row.server.headers_p50 >= 0.8 * row.server.ttft_p50:
        text += (
            f"So {fmt(share * 100, 0)}% of an answer's time passes before its first token, "
            "nearly all of it before the response headers, that is while the turn is set up "
            "(accept, `chats/new`, opening the upstream stream): each of those steps waits "
            "behind the relaying of every stream in flight, and once an answer starts, its "
            "frames, already buffered upstream, follow in a burst."
        )
    else:
        text += f"The first token comes {fmt(share * 100, 0)}% of the way into an answer."
    return text


def paced_demand(result: PacingResult) -> str:
    row = result.rows[-1]
    in_flight = min(row.concurrency, row.server.requests)
    wanted = in_flight * 1000 / result.pacing.pace_ms
    got, direct = row.server.chunks_per_second, row.direct.chunks_per_second
    return (
        f"**Paced streams.** With a frame every {fmt(result.pacing.pace_ms, 0)} ms, "
        f"{in_flight:,} streams in flight ask for up to {wanted:,.0f} chunks/s; the load "
        f"generator takes {direct:,.0f}/s direct and {got:,.0f}/s through the server "
        f"({fmt(got / direct * 100 if direct else math.nan, 0)}% of direct), with a first-token "
        f"p50 of {_ms(row.server.ttft_p50)} ms against {_ms(row.direct.ttft_p50)} ms direct. "
        f"At C={result.rows[0].concurrency} the server adds {fmt(result.rows[0].added_p50_ms)} ms "
        "(p50) to the first token."
    )


def wakeups(back_to_back: PacingResult, paced: PacingResult) -> str:
    """Per-chunk CPU when frames arrive one at a time, against back to back (both at C=1)."""
    fast, slow = back_to_back.rows[0], paced.rows[0]

    def per_chunk(cpu: float, row: Row) -> float:
        return cpu / row.server.chunks * 1e6 if row.server.chunks else math.nan

    server_fast, server_slow = (
        per_chunk(fast.costs.server_cpu, fast),
        per_chunk(slow.costs.server_cpu, slow),
    )
    upstream_fast = per_chunk(fast.costs.upstream_cpu, fast)
    upstream_slow = per_chunk(slow.costs.upstream_cpu, slow)
    return (
        f"**Every wake-up costs.** At C=1, a relayed chunk costs the server "
        f"{fmt(server_slow, 0)} µs of CPU when frames come every "
        f"{fmt(paced.pacing.pace_ms, 0)} ms, against {fmt(server_fast, 0)} µs back to back "
        f"({fmt(server_slow / server_fast if server_fast else math.nan, 1)}×); the bare bench "
        f"upstream shows the same effect ({fmt(upstream_slow, 0)} against "
        f"{fmt(upstream_fast, 0)} µs per frame). Paced, every frame is its own wake-up of "
        "each process (epoll, timers, one read and one write per chunk) with nothing to "
        "batch, and on this machine a wake-up is expensive; real answers arrive paced, so "
        "the paced CPU figures are the ones to plan with."
    )


def memory(result: PacingResult) -> str:
    low, high = result.rows[0], result.rows[-1]
    extra = high.concurrency - low.concurrency
    grown = high.costs.server_peak_rss_mib - low.costs.server_peak_rss_mib
    per_stream = grown * 1024 / extra if extra else math.nan
    return (
        f"**Memory.** {_name(result)}, the server's peak RSS goes from "
        f"{fmt(low.costs.server_peak_rss_mib, 0)} MiB at C={low.concurrency} to "
        f"{fmt(high.costs.server_peak_rss_mib, 0)} MiB at C={high.concurrency}, about "
        f"{fmt(per_stream, 0)} KiB per extra stream in flight."
    )


def load_generator(rows: Sequence[Row]) -> str:
    row = max(rows, key=lambda r: r.concurrency)
    share = row.costs.loadgen_cpu / row.costs.server_cpu * 100 if row.costs.server_cpu else 0
    return (
        f"**The harness shares the machine.** The aiohttp load generator spends "
        f"{fmt(row.per_1k(row.costs.loadgen_cpu), 2)} CPU-s per 1k answers at C={row.concurrency} "
        f"({fmt(share, 0)}% of what the server spends) on the same 2 cores, so the throughput "
        "figures are what the server does with one core while sharing the other, not more."
    )


def client_choice(results: Sequence[ClientResult]) -> str:
    top = max(r.concurrency for r in results)
    level = [r for r in results if r.concurrency == top and not math.isnan(r.cpu)]
    curl = next((r for r in level if r.client == "curl_cffi"), None)
    if curl is None:
        return ""
    cheapest = min(level, key=lambda r: r.cpu_per_1k)
    others = ", ".join(
        f"{r.client} {fmt(r.cpu_per_1k, 2)} ({fmt(r.wall, 2)} s)" for r in level if r is not curl
    )
    if cheapest is curl:
        verdict = "the cheapest of the three here"
    else:
        ratio = curl.cpu_per_1k / cheapest.cpu_per_1k if cheapest.cpu_per_1k else math.nan
        verdict = f"{fmt(ratio, 1)}× the CPU of {cheapest.client}, the cheapest"
    return (
        f"**Upstream client.** Streaming 100-frame answers at C={top}, curl_cffi (Chrome "
        f"fingerprint) spends {fmt(curl.cpu_per_1k, 2)} CPU-s per 1k answers in "
        f"{fmt(curl.wall, 2)} s, {verdict}; the others: {others}. That is the measured price "
        "of the browser TLS fingerprint the real backend's WAF looks at."
    )


def error_summary(results: Sequence[PacingResult]) -> str:
    server = sum(row.server.errors for r in results for row in r.rows)
    direct = sum(row.direct.errors for r in results for row in r.rows)
    total = sum(row.server.requests for r in results for row in r.rows)
    if not server and not direct:
        return f"**Errors.** None: all {total:,} answers through the server ended with [DONE]."
    return (
        f"**Errors.** {server:,} of {total:,} answers through the server failed "
        f"({direct:,} direct); the kinds are listed below."
    )
