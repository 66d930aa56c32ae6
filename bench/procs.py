"""Child processes of the bench: start, wait until ready, measure through /proc, always stop."""

from __future__ import annotations

import contextlib
import math
import os
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
VENV_BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_GRACE = 10.0


@dataclass
class Child:
    """A started child process whose stderr goes to a temporary file."""

    name: str
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]
    log: str = ""  # its whole stderr, kept when it is stopped
    exited_by_itself: int | None = None  # its exit code, if it was gone before we stopped it

    @property
    def pid(self) -> int:
        return self.process.pid

    def stderr_text(self) -> str:
        self.stderr.flush()
        return Path(self.stderr.name).read_text(errors="replace")

    def check_alive(self) -> None:
        code = self.process.poll()
        if code is not None:
            tail = self.stderr_text()[-2000:]
            raise RuntimeError(f"{self.name} exited with code {code}; stderr:\n{tail}")


def raise_open_file_limit() -> None:
    """Allow thousands of sockets (children inherit the raised soft limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else hard
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)


def peak_rss_mib(pid: int) -> float:
    """VmHWM of a process: its peak resident set size (NaN once it has exited)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return math.nan
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def reset_peak_rss(pid: int) -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False where not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@contextlib.contextmanager
def affinity(core: int | None) -> Iterator[None]:
    """Run the block pinned to `core` (None: unchanged); children started in it inherit it."""
    if core is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {core})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def _spawn(
    name: str,
    argv: list[str],
    env: dict[str, str] | None = None,
    cwd: Path = ROOT,
    core: int | None = None,
) -> Child:
    stderr = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")  # noqa: SIM115
    with affinity(core):  # every thread the child ever starts inherits the pinning
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=cwd,
            start_new_session=True,  # a Ctrl-C reaches only the bench, which then stops it
        )
    return Child(name, process, stderr)


def stop(child: Child) -> None:
    """Terminate a child, kill it if it lingers, and reap it."""
    process = child.process
    child.exited_by_itself = process.poll()
    if child.exited_by_itself is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
    child.log = child.stderr_text()
    child.stderr.close()


def _read_ready_port(child: Child, timeout: float) -> int:
    stdout = child.process.stdout
    assert stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        readable, _, _ = select.select([stdout], [], [], 0.2)
        if readable:
            line = stdout.readline().decode().split()
            if len(line) == 2 and line[0] == "READY":
                return int(line[1])
    raise RuntimeError(f"{child.name} did not report READY within {timeout:.0f} s")


@contextlib.contextmanager
def bench_upstream(
    frames: int, pace_ms: float, port: int = 0, core: int | None = None
) -> Iterator[tuple[Child, str]]:
    """Run the bench upstream; yields the child and its base URL."""
    argv = [sys.executable, str(BENCH_DIR / "upstream.py"), "--port", str(port)]
    argv += ["--frames", str(frames), "--pace-ms", str(pace_ms)]
    child = _spawn("upstream", argv, core=core)
    try:
        port = _read_ready_port(child, timeout=20)
        yield child, f"http://127.0.0.1:{port}"
    finally:
        stop(child)


def _wait_for_ping(child: Child, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        child.check_alive()
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as reply:
            if reply.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{child.name} did not answer {url} within {timeout:.0f} s")


def server_command() -> list[str]:
    """`qwen-free-api` from this virtualenv, or `python -m qwen_free_api`."""
    script = VENV_BIN / "qwen-free-api"
    return [str(script)] if script.exists() else [sys.executable, "-m", "qwen_free_api"]


@contextlib.contextmanager
def api_server(
    upstream_url: str, command: list[str] | None = None, core: int | None = None
) -> Iterator[tuple[Child, str]]:
    """Run `qwen-free-api serve` against the bench upstream; yields the child and its URL.

    The server gets no QFA_* variable of ours and runs in bench/, away from any `.env`.
    """
    port = free_port()
    argv = [*(command or server_command()), "serve", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--intl-base-url", upstream_url, "--log-level", "warning"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("QFA_")}
    env["QFA_DELETE_SESSIONS"] = "true"
    # One bench credential carries every stream: lift the pool's per-credential cap (a policy
    # against account flagging, not part of the relay cost this measures).
    env["QFA_ACCOUNT_CONCURRENCY"] = "1000000"
    child = _spawn("server", argv, env, cwd=BENCH_DIR, core=core)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_ping(child, base + "/ping", timeout=60)
        yield child, base
    finally:
        stop(child)
