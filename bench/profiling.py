"""Optional (`run.py --profile`): where the server's CPU goes, by cProfile on one level."""

from __future__ import annotations

import os
import pstats
import signal
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from load import Sample, load_level
from pool import Batch, run_async
from procs import Child, api_server, bench_upstream
from scenario import FRAMES
from stats import Summary, summarize

LEVEL = (100, 1000)  # concurrency, requests; back to back
WARMUP = (50, 50)
DEADLINE = 120.0
TOP = 12
# Runs the CLI with a profiler that SIGUSR1 starts and SIGUSR2 stops and writes out, so that
# start-up, warm-up and shutdown stay out of the profile.
WRAPPER = """
import cProfile, signal, sys
from qwen_free_api.cli import main
out = sys.argv.pop(1)
sys.argv[0] = "qwen-free-api"
profiler = cProfile.Profile()
signal.signal(signal.SIGUSR1, lambda *_: profiler.enable())
signal.signal(signal.SIGUSR2, lambda *_: (profiler.disable(), profiler.dump_stats(out)))
main()
"""


@dataclass(frozen=True, slots=True)
class Profile:
    concurrency: int
    summary: Summary
    total: float  # profiled seconds of own time, all functions
    components: list[tuple[str, float]]  # (component, own seconds), largest first
    functions: list[tuple[str, int, float]]  # (function, calls, own seconds), largest first


def component(path: str) -> str:
    """The package a profiled function belongs to: site-packages name, stdlib module, or C."""
    if path == "~" or path.startswith("<"):
        return "built-ins (C code called from Python)"
    parts = Path(path).parts
    if "qwen_free_api" in parts:
        return "qwen_free_api (the server's own code)"
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1]
    for index, part in enumerate(parts):
        if part.startswith("python3"):
            return f"stdlib {Path(parts[index + 1]).stem}" if index + 1 < len(parts) else part
    return "other"


def _short(key: tuple[str, int, str]) -> str:
    path, line, name = key
    if path == "~":
        return name
    parts = Path(path).parts
    tail = "/".join(parts[-2:]) if len(parts) >= 2 else path
    return f"{tail}:{line} {name}"


def read_profile(path: Path) -> tuple[float, list[tuple[str, float]], list[tuple[str, int, float]]]:
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    by_component: defaultdict[str, float] = defaultdict(float)
    functions: list[tuple[str, int, float]] = []
    for key, (_cc, calls, own, _cum, _callers) in stats.items():
        by_component[component(key[0])] += own
        functions.append((_short(key), calls, own))
    functions.sort(key=lambda item: item[2], reverse=True)
    total = sum(by_component.values())
    components = sorted(by_component.items(), key=lambda item: item[1], reverse=True)
    return total, components[:TOP], functions[:TOP]


def _profiled_level(server: Child, url: str, out: Path) -> Batch[Sample]:
    concurrency, count = LEVEL
    run_async(load_level("server", url, WARMUP[0], WARMUP[1], DEADLINE))
    os.kill(server.pid, signal.SIGUSR1)
    batch = run_async(load_level("server", url, concurrency, count, DEADLINE))
    os.kill(server.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 30
    while not out.exists() and time.monotonic() < deadline:
        server.check_alive()
        time.sleep(0.2)
    time.sleep(0.5)  # let the dump finish
    return batch


def profile_server() -> Profile:
    """One back-to-back level through a server running under cProfile."""
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as folder:
        out = Path(folder) / "server.prof"
        command = [sys.executable, "-c", WRAPPER, str(out)]
        with (
            bench_upstream(FRAMES, 0) as (_upstream, upstream_url),
            api_server(upstream_url, command) as (server, server_url),
        ):
            batch = _profiled_level(server, server_url, out)
        total, components, functions = read_profile(out)
    return Profile(LEVEL[0], summarize(batch), total, components, functions)
