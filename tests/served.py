"""A real `qwen-free-api serve` process on loopback, wired to the fake upstream.

Its log goes to a file; when it stops, every line is checked: no credential (the suite-wide
secret scan sees only in-process logs) and no traceback (no exception escaped a handler).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

import log_scan

START_TIMEOUT = 30.0


@dataclass
class Served:
    url: str
    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def fake_env(fake_url: str, state: Path) -> dict[str, str]:
    """Every upstream host pointed at the fake, state in `state`, nothing from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")}
    hosts = ["CN_BASE_URL", "CN_API_BASE_URL", "CN_SEC_BASE_URL", "INTL_BASE_URL"]
    hosts += ["CN_WORKSPACE_BASE_URL", "CN_OSS_BASE_URL", "INTL_OSS_BASE_URL"]
    env.update({f"QFA_{name}": fake_url for name in hosts})
    env.update(
        QFA_STORE=f"sqlite:///{state}",
        QFA_HEALTH_INTERVAL="0",
        QFA_TRANSIENT_COOLDOWN="0",
        QFA_IMAGE_POLL_INTERVAL="0",
        QFA_READ_TIMEOUT="10",
        QFA_LOG_LEVEL="info",
    )
    return env


@contextmanager
def served(fake_url: str, workdir: Path, **settings: str) -> Iterator[Served]:
    """Run the server with these QFA_* settings (names without the prefix) until the block ends."""
    env = fake_env(fake_url, workdir / "state.db")
    env.update({f"QFA_{name.upper()}": value for name, value in settings.items()})
    port = free_port()
    log = workdir / "server.log"
    command = [sys.executable, "-m", "qwen_free_api", "serve", "--host", "127.0.0.1"]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, cwd=workdir, stdout=sink, stderr=sink
        )
    server = Served(f"http://127.0.0.1:{port}", "127.0.0.1", port, log, process)
    try:
        _wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)
    check_log(server.log_lines())


def _wait_ready(server: Served) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:  # start-up poll, not test synchronisation
        if server.process.poll() is not None:
            raise RuntimeError("the server exited:\n" + "\n".join(server.log_lines()[-20:]))
        try:
            if httpx.get(server.url + "/ping", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("the server did not start listening in time")


def check_log(lines: list[str]) -> None:
    leaks = log_scan.scan(lines)
    assert not leaks, f"{len(leaks)} server log line(s) hold a credential: {leaks[:5]}"
    tracebacks = [n for n, line in enumerate(lines) if line.startswith("Traceback")]
    assert not tracebacks, "\n".join(lines[tracebacks[0] - 2 : tracebacks[0] + 40])
