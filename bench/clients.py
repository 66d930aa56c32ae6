"""Upstream HTTP client comparison: httpx, aiohttp and curl_cffi stream the bench upstream.

Each client runs in a fresh subprocess (`--worker`), so its CPU time (getrusage) is its own.
Standalone, `python bench/clients.py [--quick]` starts a bench upstream and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pool import run_async, run_bounded
from procs import bench_upstream, cpu_seconds, peak_rss_mib, raise_open_file_limit

if TYPE_CHECKING:
    from curl_cffi.requests import AsyncSession, Response

CLIENTS = ("httpx", "aiohttp", "curl_cffi")
PLAN = ((1, 300), (100, 2000))
FRAMES = 100
TIMEOUT = 60.0
LEVEL_DEADLINE = 90.0
WORKER_TIMEOUT = 240.0
BODY = b'{"stream":true,"incremental_output":true,"model":"qwen3.7-plus","messages":[]}'
HEADERS = {"content-type": "application/json", "accept": "text/event-stream"}
FINISHED = b'"status": "finished"'
TAIL = 256


@dataclass(frozen=True, slots=True)
class ClientResult:
    """One client at one concurrency."""

    client: str
    concurrency: int
    requests: int
    errors: int
    wall: float
    cpu: float  # CPU-seconds of the client process
    upstream_cpu: float
    max_rss_mib: float
    first_error: str | None = None

    @property
    def cpu_per_1k(self) -> float:
        return self.cpu / self.requests * 1000

    @property
    def per_second(self) -> float:
        """Complete streams per second."""
        return (self.requests - self.errors) / self.wall


class Streamer(Protocol):
    async def fetch(self, url: str) -> bool: ...

    async def close(self) -> None: ...


class HttpxStreamer:
    def __init__(self, concurrency: int) -> None:
        import httpx

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._client = httpx.AsyncClient(limits=limits, timeout=TIMEOUT)

    async def fetch(self, url: str) -> bool:
        async with self._client.stream("POST", url, content=BODY, headers=HEADERS) as reply:
            tail = b""
            async for chunk in reply.aiter_bytes():
                tail = tail[-TAIL:] + chunk
            return reply.status_code == 200 and FINISHED in tail

    async def close(self) -> None:
        await self._client.aclose()


class AiohttpStreamer:
    def __init__(self, concurrency: int) -> None:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency, force_close=False)
        timeout = aiohttp.ClientTimeout(total=TIMEOUT)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)

    async def fetch(self, url: str) -> bool:
        async with self._session.post(url, data=BODY, headers=HEADERS) as reply:
            tail = b""
            async for chunk in reply.content.iter_any():
                tail = tail[-TAIL:] + chunk
            return reply.status == 200 and FINISHED in tail

    async def close(self) -> None:
        await self._session.close()


class CurlStreamer:
    """curl_cffi as the server configures it: Chrome fingerprint, HTTP/2 only over TLS."""

    def __init__(self, concurrency: int) -> None:
        from curl_cffi import CurlHttpVersion, CurlOpt
        from curl_cffi.requests import AsyncSession

        self._session: AsyncSession[Response] = AsyncSession(
            impersonate="chrome",
            max_clients=concurrency,
            timeout=TIMEOUT,
            curl_options={CurlOpt.HTTP_VERSION: CurlHttpVersion.V2TLS},
        )

    async def fetch(self, url: str) -> bool:
        # Any: curl_cffi leaves aiter_content and aclose untyped.
        reply: Any = await self._session.request(
            "POST", url, data=BODY, headers=HEADERS, stream=True
        )
        try:
            tail = b""
            async for chunk in reply.aiter_content():
                tail = tail[-TAIL:] + chunk
            return reply.status_code == 200 and FINISHED in tail
        finally:
            await reply.aclose()

    async def close(self) -> None:
        await self._session.close()


def make_streamer(name: str, concurrency: int) -> Streamer:
    kinds: dict[str, type[HttpxStreamer | AiohttpStreamer | CurlStreamer]] = {
        "httpx": HttpxStreamer,
        "aiohttp": AiohttpStreamer,
        "curl_cffi": CurlStreamer,
    }
    return kinds[name](concurrency)


def _cpu_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _level(name: str, url: str, concurrency: int, count: int, upstream_pid: int) -> str:
    streamer = make_streamer(name, concurrency)
    errors: list[str] = []

    async def one() -> bool:
        try:
            if await streamer.fetch(url):
                return True
            errors.append("stream did not end with the finished frame")
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}"[:200])
        return False

    try:
        await run_bounded(one, concurrency, max(20, concurrency), LEVEL_DEADLINE)  # warm-up
        errors.clear()
        cpu, upstream = _cpu_self(), cpu_seconds(upstream_pid)
        batch = await run_bounded(one, concurrency, count, LEVEL_DEADLINE)
        cpu, upstream = _cpu_self() - cpu, cpu_seconds(upstream_pid) - upstream
    finally:
        await streamer.close()
    failed = batch.results.count(False) + batch.unfinished
    rss = peak_rss_mib(os.getpid())  # not ru_maxrss: that keeps the forking parent's peak
    first = errors[0] if errors else ("deadline passed" if batch.unfinished else None)
    result = ClientResult(name, concurrency, count, failed, batch.wall, cpu, upstream, rss, first)
    return json.dumps(asdict(result))


def worker(name: str, url: str, plan: list[tuple[int, int]], upstream_pid: int) -> None:
    """In the fresh subprocess: run each level and print one JSON line per level."""
    raise_open_file_limit()
    for concurrency, count in plan:
        print(run_async(_level(name, url, concurrency, count, upstream_pid)), flush=True)


def _plan_text(plan: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{concurrency}:{count}" for concurrency, count in plan)


def _run_worker(
    name: str, argv: list[str], plan: tuple[tuple[int, int], ...]
) -> list[ClientResult]:
    """The worker's results; levels it did not report (it crashed, or hung) count as failed."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=WORKER_TIMEOUT, check=False
        )
        stdout, why = done.stdout, (done.stderr.strip().splitlines() or ["no stderr"])[-1]
        why = f"worker exited with code {done.returncode}: {why}"
    except subprocess.TimeoutExpired as expired:
        out = expired.stdout or b""
        stdout = out.decode() if isinstance(out, bytes) else out
        why = f"worker killed after {WORKER_TIMEOUT:.0f} s"
    results = [ClientResult(**json.loads(line)) for line in stdout.splitlines() if line]
    nan = float("nan")
    for concurrency, count in plan[len(results) :]:
        results.append(ClientResult(name, concurrency, count, count, nan, nan, nan, nan, why))
    return results


def compare(
    url: str, upstream_pid: int, plan: tuple[tuple[int, int], ...] = PLAN
) -> list[ClientResult]:
    """Run every client in its own subprocess against the bench upstream at `url`."""
    results: list[ClientResult] = []
    for name in CLIENTS:
        argv = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--url", url]
        argv += ["--upstream-pid", str(upstream_pid), "--plan", _plan_text(plan)]
        results += _run_worker(name, argv, plan)
    return results


def scaled(plan: tuple[tuple[int, int], ...], divisor: int) -> tuple[tuple[int, int], ...]:
    return tuple((concurrency, max(1, count // divisor)) for concurrency, count in plan)


def completion_url(base: str) -> str:
    return base + "/api/v2/chat/completions?chat_id=bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--upstream-pid", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--plan", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        plan = [(int(c), int(n)) for c, n in (p.split(":") for p in args.plan.split(","))]
        worker(args.worker, args.url, plan, args.upstream_pid)
        return
    from report import client_table

    raise_open_file_limit()
    with bench_upstream(FRAMES, 0) as (upstream, base):
        results = compare(completion_url(base), upstream.pid, scaled(PLAN, 10 if args.quick else 1))
    print(client_table(results))


if __name__ == "__main__":
    main()
