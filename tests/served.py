"""A real `qwen-free-api serve` process on loopback, wired to the fake upstream.

Its log goes to a file; when it stops, every line is checked: no credential (the suite-wide
secret scan sees only in-process logs) and no traceback (no exception escaped a handler).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import log_scan

from support import SERVE, fake_hosts_env, free_port, wait_for_ping


@dataclass
class Served:
    url: str
    host: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()


def fake_env(fake_url: str, state: Path) -> dict[str, str]:
    """Every upstream host pointed at the fake, state in `state`, nothing from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFA_")}
    env.update(fake_hosts_env(fake_url))
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
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)], env=env, cwd=workdir, stdout=sink, stderr=sink
        )
    server = Served(f"http://127.0.0.1:{port}", "127.0.0.1", port, log, process)
    try:
        wait_for_ping(process, server.url, lambda: "\n".join(server.log_lines()[-20:]))
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


def check_log(lines: list[str]) -> None:
    leaks = log_scan.scan(lines)
    assert not leaks, f"{len(leaks)} server log line(s) hold a credential: {leaks[:5]}"
    tracebacks = [n for n, line in enumerate(lines) if line.startswith("Traceback")]
    assert not tracebacks, "\n".join(lines[tracebacks[0] - 2 : tracebacks[0] + 40])
