"""The whole docs/performance.md: machine, method, tables and reading of one bench run."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import goals
import reading
import sections
from clients import ClientResult
from procs import ROOT
from profiling import Profile
from report import (
    client_table,
    cpu_table,
    error_lines,
    level_table,
    profile_tables,
    server_log_lines,
)
from scenario import FRAMES, SETTLE, WARMUP_REQUESTS, PacingResult
from session import Session

PACKAGES = ("uvicorn", "starlette", "curl_cffi", "aiohttp", "httpx", "uvloop")


@dataclass(frozen=True, slots=True)
class Run:
    """Everything one bench run measured."""

    session: Session
    clients: list[ClientResult]
    quick: bool
    seconds: float
    profile: Profile | None = None
    load_before: float = 0.0  # the machine's 1-minute load average when the run started

    @property
    def pacings(self) -> list[PacingResult]:
        return self.session.pacings


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


def git_state() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = " with uncommitted changes" if git("status", "--porcelain", "--", "src") else ""
    return f"commit {head}{dirty}"


def machine(load_before: float) -> str:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    versions = ", ".join(f"{name} {_version(name)}" for name in PACKAGES)
    return (
        f"Measured {now} on {len(os.sched_getaffinity(0))} cores (`nproc`), "
        f"{cpu_model()}, Python {platform.python_version()}, Linux {platform.release()}; "
        f"{versions}; the server at {git_state()}. The 1-minute load average was "
        f"{load_before:.2f} when the run started (anything else running shares the 2 cores)."
    )


REPRODUCE = """\
```sh
.venv/bin/python bench/run.py      # several minutes; writes this file
.venv/bin/python bench/run.py --quick --out /tmp/performance.md   # a tenth of the requests
# side by side with another OpenAI-compatible server, started beforehand and pointed at the
# bench upstream (http://127.0.0.1:18900 unless --upstream-port says otherwise):
.venv/bin/python bench/run.py --compare http://127.0.0.1:9000 --compare-name go-peer \\
    --compare-model qwen3.7-plus --compare-key TOKEN --compare-pid PID
```

`--skip-clients` leaves out the client comparison, `--no-spy` the py-spy profile,
`--no-backlog` the connect burst, `--no-pin` the core pinning; `--profile` adds a cProfile of
the server (about 30 s more). `bench/clients.py` and `bench/upstream.py` also run on their own;
`POST /bench/config?pace_ms=20` switches a running bench upstream's pacing."""

METHOD = """\
Everything runs on this one machine over 127.0.0.1: `bench/upstream.py`, a fake of the intl
backend on raw asyncio streams (each completion: the `response.created` frame, {frames} answer
frames each written and drained as its own HTTP chunk, the finished frame), the server
(`qwen-free-api serve`, one process, with the default `QFA_CONVERSATION_TTL`, so each answered
chat is recorded in the store for continuation rather than deleted at once;
`QFA_ACCOUNT_CONCURRENCY=1000000`, because the one bench credential carries every stream
and the pool's per-credential cap would otherwise turn most of them away), any peer servers
given with `--compare`, and an aiohttp load generator in the bench process with at most C
requests in flight. One bench upstream and one server serve the whole run; the upstream's
pacing is switched between pacings (`POST /bench/config`), so a peer pointed at it keeps its
configuration and connections.

{pinning}

- **TTFT**: from sending the request to the first SSE chunk with a non-empty
  `choices[0].delta.content`. **Direct** makes the server's two upstream calls itself
  (`chats/new`, then the completion stream) and times the first answer frame.
  **Added TTFT** = through a server minus direct, each percentile computed separately.
- **Errors**: non-200, a stream without `data: [DONE]`, an error chunk, or an exception.
  **Requests/s** (answers/s): successful answers per second of the level's wall time.
  **Relayed chunks** are the `data:` lines a client got, `[DONE]` not counted.
- **CPU-s / 1k req**: utime+stime (all threads) from `/proc/<pid>/stat` across the level
  (plus a {settle} s settle), per 1,000 requests. **Busy cores**: CPU-seconds of server,
  upstream and load generator together per wall second of the run through the server.
- **Peak RSS**: `VmHWM` of the server at the end of the level{rss}.
- **Upstream clients**: each client streams the bench upstream's completion in a fresh
  process (CPU from `getrusage`, after a warm-up of max(20, C) requests); curl_cffi is set up
  as the server sets it up (`impersonate="chrome"`, HTTP/2 only over TLS, `max_clients` = C).
- A warm-up of {warm} requests through each server and direct precedes each pacing's levels
  and is not counted."""


def _method(run: Run) -> str:
    rss_reset = all(result.rss_reset for result in run.pacings)
    rss = ", reset before each level (`clear_refs`)" if rss_reset else ", the peak since start"
    pinning = sections.pinning_text(run.session.pinned, run.session.peer_notes)
    return METHOD.format(
        frames=FRAMES, settle=SETTLE, warm=WARMUP_REQUESTS, rss=rss, pinning=pinning
    )


def _readings(run: Run) -> list[str]:
    out: list[str] = []
    if run.pacings:
        first = run.pacings[0]
        out += [reading.per_request_cost(first), reading.saturation(first)]
        out += [reading.queueing(first), reading.memory(first)]
        for paced in (r for r in run.pacings[1:] if r.pacing.pace_ms > 0):
            out += [reading.paced_demand(paced), reading.wakeups(first, paced)]
        out.append(reading.load_generator([row for r in run.pacings for row in r.rows]))
    if run.clients:
        out.append(reading.client_choice(run.clients))
    if run.pacings:
        out.append(reading.error_summary(run.pacings))
    return [line for line in out if line]


def _tables(run: Run) -> list[str]:
    parts: list[str] = []
    for result in run.pacings:
        parts += [
            f"### {result.pacing.name.capitalize()}, side by side",
            sections.side_by_side(result),
        ]
    for result in run.pacings:
        parts += [f"### {result.pacing.name.capitalize()}, this server", level_table(result)]
    parts += sections.backlog_section(run.session.bursts)
    if run.pacings:
        parts += [
            "### Where the CPU went (CPU-s per 1k requests, each process)",
            cpu_table(run.pacings),
        ]
    if run.clients:
        parts += [
            f"### Upstream HTTP clients ({FRAMES} frames back to back, one process per client)",
            client_table(run.clients),
        ]
    return parts


def _profile(profile: Profile | None) -> list[str]:
    if profile is None:
        return []
    summary = profile.summary
    return [
        "## Where the server's CPU goes (`--profile`)",
        f"cProfile inside the server during one back-to-back level, C={profile.concurrency}, "
        f"{summary.requests:,} requests ({summary.errors:,} errors, {summary.wall:.1f} s under "
        f"the profiler): {profile.total:.1f} s of own time in all, "
        f"{profile.total / summary.requests * 1000:.1f} ms per answer. The profiler slows "
        "Python code more than C code, so read the shares, not the absolute times; time in "
        "C extensions (uvloop, httptools) and in system calls counts toward the Python "
        "function that called them.",
        *profile_tables(profile),
        *_top_function(profile),
    ]


def _top_function(profile: Profile) -> list[str]:
    if not profile.functions or not profile.total:
        return []
    name, calls, own = profile.functions[0]
    return [
        f"The costliest single function is `{name}`: {own / profile.total * 100:.0f}% of all "
        f"own time, {own / calls * 1e6:.0f} µs for each of its {calls:,} calls."
    ]


def _problems(run: Run) -> list[str]:
    parts = []
    if run.session.server_exit is not None:
        parts.append(
            f"**The server exited by itself** (code {run.session.server_exit}); the levels "
            "after that point count its refused connections as errors."
        )
    errors = error_lines(run.pacings) + [
        f"- client {r.client}, C={r.concurrency}: {r.errors}×, first: `{r.first_error}`"
        for r in run.clients
        if r.errors
    ]
    if errors:
        parts += ["### Errors seen by the load generator", "\n".join(errors)]
    log = server_log_lines(run.session.server_log)
    if log:
        parts += [
            "### Server stderr (distinct lines, most frequent first)",
            "The bench upstream answers only `chats/new`, the completion and the deletion, and "
            "404 to anything else, such as the model list.",
            "\n".join(log),
        ]
    return parts


def render(run: Run, sizes: Sequence[str]) -> str:
    scope = "a `--quick` run (a tenth of the requests)" if run.quick else "a full run"
    parts = [
        "# Performance",
        "Streaming chat completions through `qwen-free-api` (and any peer servers given with "
        "`--compare`) against a local fake of the intl backend, and the upstream HTTP clients "
        f"it could use. {machine(run.load_before)}",
        "## Reproduce",
        REPRODUCE,
        f"This file was written by {scope} that took {run.seconds:.0f} s ({', '.join(sizes)}). "
        "It is overwritten by every run; every figure below comes from that run.",
        "## Method",
        _method(run),
        "## Results",
        *_tables(run),
        *goals.section(run.pacings, run.session.bursts, run.session.spy),
        "## Reading",
        *_readings(run),
        *sections.spy_section(run.session.spy),
        *_profile(run.profile),
        *_problems(run),
    ]
    return "\n\n".join(parts) + "\n"
