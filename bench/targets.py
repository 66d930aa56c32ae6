"""What the load is sent to: this server, peers given by URL, and where each process runs.

A peer is any OpenAI-compatible server the user started and pointed at the bench upstream; the
bench does not start it, so its CPU and memory are read from /proc only when its PID is given.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

from load import MODEL

FAKE_CORE = 0  # the bench upstream and the load generator
SERVER_CORE = 1  # the server measured, ours or a peer (one at a time)
OURS = "qwen-free-api"
PEER_WAIT = 120.0  # seconds the bench waits for a peer to answer at all


@dataclass(frozen=True, slots=True)
class Target:
    """A server that relays the bench upstream: base URL, the model and key to ask it with."""

    name: str
    base: str  # scheme://host:port, without /v1
    model: str = MODEL
    key: str | None = field(default=None, repr=False)  # None: a bench JWT, as for this server
    pid: int | None = None  # to read its CPU time and peak RSS from /proc
    probe_path: str = "/ping"  # a cheap request for the backlog check

    @property
    def measured(self) -> bool:
        return self.pid is not None


def peer(
    url: str, name: str | None, model: str | None, key: str | None, pid: int | None, probe: str
) -> Target:
    base = url.rstrip("/").removesuffix("/v1")
    return Target(name or base, base, model or MODEL, key, pid, probe)


def pinning_possible() -> bool:
    cores = os.sched_getaffinity(0)
    return FAKE_CORE in cores and SERVER_CORE in cores


def threads_of(pid: int) -> list[int]:
    try:
        return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


@contextlib.contextmanager
def pinned_process(pid: int | None, core: int | None) -> Iterator[str]:
    """Pin every thread of a running process to `core`, and restore its masks afterwards.

    Threads it starts later inherit the mask of the thread that starts them. Yields a note
    for the report: pinned, or why not.
    """
    if pid is None or core is None:
        yield "not pinned"
        return
    saved: dict[int, set[int]] = {}
    failed = 0
    for tid in threads_of(pid):
        try:
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {core})
        except OSError:
            failed += 1
    note = f"pinned to core {core}" if saved and not failed else f"pinning failed ({failed})"
    try:
        yield note
    finally:
        for tid, mask in saved.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, mask)


def wait_until_answering(target: Target, timeout: float = PEER_WAIT) -> None:
    """Wait until the target answers any HTTP status on its probe path."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(target.base + target.probe_path, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answered, if only with an error status
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise RuntimeError(f"{target.name} did not answer at {target.base} in {timeout:.0f} s: {last}")
