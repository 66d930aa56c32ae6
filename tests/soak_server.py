"""A real server process for the soak tests: start it, stop or kill it, and read its figures
(RSS, open file descriptors, asyncio tasks, streams and leases in flight)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
import httpx
import psutil

from support import SERVE, fake_hosts_env, free_port, wait_for_ping

Figures = dict[str, int]
POLL = 0.05  # seconds between two looks at a condition (`eventually`), not a synchronisation


def server_env(fake_url: str, **settings: str) -> dict[str, str]:
    """The environment of a server process on the fake: no QFA_* of the caller leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")}
    env.update(fake_hosts_env(fake_url))
    env.update(QFA_LOG_LEVEL="warning", QFA_HEALTH_INTERVAL="0", QFA_IMAGE_POLL_INTERVAL="0")
    env.update({f"QFA_{name.upper()}": value for name, value in settings.items()})
    return env


class ServerProcess:
    """`python -m qwen_free_api serve` on a free loopback port; output goes to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, admin_key: str) -> None:
        self.env = env
        self.log_path = log_path
        self.admin = {"authorization": f"Bearer {admin_key}"}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ServerProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*SERVE, "--port", str(self.port)],
                env=self.env,
                cwd="/",
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for_ping(self.process, self.url, lambda: self.log_text()[-3000:])
        return self

    @property
    def ps(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def rss(self) -> int:
        rss: int = self.ps.memory_info().rss
        return rss

    def fds(self) -> int:
        count: int = self.ps.num_fds()
        return count

    def upstream_sockets(self, fake_port: int) -> int:
        """TCP connections from this server to the fake (kept-alive ones included)."""
        found = self.ps.net_connections(kind="tcp")
        return sum(1 for c in found if c.raddr and c.raddr.port == fake_port)

    async def metrics(self, client: httpx.AsyncClient) -> dict[str, float]:
        """Every unlabelled sample of /metrics."""
        response = await client.get(self.url + "/metrics")
        response.raise_for_status()
        samples: dict[str, float] = {}
        for line in response.text.splitlines():
            if line and not line.startswith("#") and "{" not in line:
                name, _, value = line.partition(" ")
                samples[name] = float(value)
        return samples

    async def in_flight(self, client: httpx.AsyncClient) -> int:
        """Leases held on every pool credential, as the server's admin API reports them."""
        response = await client.get(self.url + "/v1/accounts", headers=self.admin)
        response.raise_for_status()
        return sum(int(view["in_flight"]) for view in response.json()["data"])

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, then wait; returns the exit status (None if it was never started)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(timeout=10)

    def kill(self) -> None:
        """SIGKILL: the process dies mid-whatever, without any clean-up of its own."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0
) -> float:
    """Wait until `check()` holds, looking again every POLL s; returns the seconds it took.
    Fails with `what` (and no timing assertion) if it never holds within the generous timeout."""
    start = time.monotonic()
    with anyio.move_on_after(timeout):
        while not await check():
            await anyio.sleep(POLL)
        return time.monotonic() - start
    raise AssertionError(f"never happened within {timeout} s: {what}")


SAMPLE_EVERY = 0.5  # seconds between two samples of the peaks (a measurement, not a wait)


async def figures(server: ServerProcess, client: httpx.AsyncClient, fake_port: int) -> Figures:
    """RSS, open fds, asyncio tasks and sockets to the fake of the server, right now."""
    metrics = await server.metrics(client)
    return {
        "rss": server.rss(),
        "fds": server.fds(),
        "tasks": int(metrics["qfa_asyncio_tasks"]),
        "upstream_sockets": server.upstream_sockets(fake_port),
    }


async def sample_peaks(
    server: ServerProcess, client: httpx.AsyncClient, fake_port: int, peaks: Figures
) -> None:
    """Keep the highest of each figure in `peaks` until cancelled."""
    while True:
        now = await figures(server, client, fake_port)
        for name, value in now.items():
            peaks[name] = max(peaks.get(name, 0), value)
        await anyio.sleep(SAMPLE_EVERY)


def as_mb(size: float) -> str:
    return f"{size / 1e6:.1f} MB"


def check_log(server: ServerProcess, secrets: list[str]) -> list[str]:
    """Lines of the server's own output that show a credential, or a traceback."""
    bad = []
    for line in server.log_text().splitlines():
        if any(secret in line for secret in secrets) or "Traceback" in line:
            bad.append(line[:300])
    return bad
