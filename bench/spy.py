"""Where the server's time goes: py-spy samples the running server during one level.

py-spy reads the server's stacks from outside (pausing it for each sample, so that every stack
is whole), and `--gil` keeps only the samples of the thread that holds the GIL, that is, the
Python side at work (C code it calls without releasing the GIL, such as a socket write, counts
toward the calling function). The raw collapsed stacks are summarised three ways: own time of
the innermost function, own time by package, and the inclusive time of the server's own
functions.
"""

from __future__ import annotations

import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from load import load_level
from pool import run_async
from procs import VENV_BIN, cpu_seconds
from stats import Summary, summarize

LEVEL = (100, 1000)  # concurrency, requests; back to back
RATE = 250  # samples per second
TOP = 15
DEADLINE = 120.0
OWN = "qwen_free_api/"
CLI = "qwen_free_api/cli.py"  # the frames above every request: not worth a line
FRAME = re.compile(r"^(?P<function>.*) \((?P<path>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True, slots=True)
class SpyProfile:
    """A summary of py-spy's samples of the server during one level."""

    concurrency: int
    summary: Summary | None
    cpu: float  # the server's CPU-seconds during the level (py-spy attached)
    samples: int
    rate: int
    own: list[tuple[str, float]] = field(default_factory=list)  # (function, share)
    packages: list[tuple[str, float]] = field(default_factory=list)
    ours: list[tuple[str, float]] = field(default_factory=list)  # inclusive, qwen_free_api
    error: str | None = None

    @property
    def sampled_seconds(self) -> float:
        return self.samples / self.rate


def _parse_frame(frame: str) -> tuple[str, str]:
    """(function with its file, file path) of one collapsed-stack frame."""
    match = FRAME.match(frame)
    if match is None:
        return frame, frame
    path = match["path"]
    return f"{match['function']} ({path})", path


def package(path: str) -> str:
    """The package a frame's file belongs to, as py-spy shortens paths."""
    if path.startswith("<frozen "):
        return "stdlib " + path[len("<frozen ") : -1]
    if path == "<string>":
        return "generated code (dataclass __init__ and the like)"
    top = path.split("/", 1)[0].removesuffix(".py")
    if top in sys.stdlib_module_names:
        return "stdlib " + top
    return top


def summarise(lines: Iterable[str]) -> tuple[int, Counter[str], Counter[str], Counter[str]]:
    """Total samples, and sample counts by leaf function, leaf package, and our functions."""
    total = 0
    own: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rstrip("\n").rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_parse_frame(frame) for frame in stack.split(";")]
        leaf, leaf_path = frames[-1]
        own[leaf] += count
        packages[package(leaf_path)] += count
        for name in {name for name, path in frames if path.startswith(OWN) and path != CLI}:
            ours[name] += count
    return total, own, packages, ours


def _shares(counts: Counter[str], total: int) -> list[tuple[str, float]]:
    return [(name, count / total) for name, count in counts.most_common(TOP)] if total else []


def _record(pid: int, out: Path) -> subprocess.Popen[bytes]:
    argv = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--format", "raw"]
    argv += ["--gil", "--rate", str(RATE), "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _stop(spy: subprocess.Popen[bytes]) -> str:
    """Stop py-spy (SIGINT makes it write its output); what it said (it says it on stdout)."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        said, _ = spy.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        spy.kill()
        said, _ = spy.communicate()
    return said.decode(errors="replace").strip()


def _started(spy: subprocess.Popen[bytes]) -> str | None:
    """Wait until py-spy says it is sampling; None then, else why it is not."""
    said = spy.stdout
    assert said is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        readable, _, _ = select.select([said], [], [], 0.2)
        if readable:
            line = said.readline().decode(errors="replace")
            if "Sampling process" in line:
                return None
            if not line:  # it exited
                return _stop(spy) or f"py-spy exited with code {spy.wait()}"
    return "py-spy did not start sampling within 30 s: " + _stop(spy)[-300:]


def profile(server_pid: int, server_url: str) -> SpyProfile:
    """Sample the running server under one back-to-back level (the upstream must be unpaced)."""
    concurrency, count = LEVEL
    with tempfile.TemporaryDirectory(prefix="bench-spy-") as folder:
        out = Path(folder) / "server.txt"
        spy = _record(server_pid, out)
        failure = _started(spy)
        if failure is not None:
            return SpyProfile(concurrency, None, float("nan"), 0, RATE, error=failure)
        before = cpu_seconds(server_pid)
        batch = run_async(load_level("server", server_url, concurrency, count, DEADLINE))
        cpu = cpu_seconds(server_pid) - before
        said = _stop(spy)
        if not out.exists():
            return SpyProfile(concurrency, summarize(batch), cpu, 0, RATE, error=said[-300:])
        with out.open() as lines:
            total, own, packages, ours = summarise(lines)
    return SpyProfile(
        concurrency,
        summarize(batch),
        cpu,
        total,
        RATE,
        own=_shares(own, total),
        packages=_shares(packages, total),
        ours=_shares(ours, total),
    )
