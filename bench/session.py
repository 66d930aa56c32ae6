"""One bench session: start the bench upstream and this server (pinned), add the peers, run
every pacing, then the backlog check and the py-spy profile, and stop what was started."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from backlog import Burst, burst
from pool import run_async
from procs import affinity, api_server, bench_upstream
from scenario import FRAMES, Pacing, PacingResult, Processes, configure_upstream, run_pacing
from spy import SpyProfile, profile
from targets import (
    FAKE_CORE,
    OURS,
    SERVER_CORE,
    Target,
    pinned_process,
    pinning_possible,
    wait_until_answering,
)

COMPARE_PORT = 18900  # where the bench upstream listens when peers are compared


@dataclass(frozen=True, slots=True)
class Options:
    pacings: list[Pacing]
    peers: tuple[Target, ...] = ()
    upstream_port: int = 0
    pin: bool = True
    backlog: bool = True
    spy: bool = True


@dataclass(frozen=True, slots=True)
class Session:
    """Everything one session measured, and how it ran."""

    pacings: list[PacingResult]
    server_log: str  # our server's whole stderr
    server_exit: int | None  # its exit code if it exited by itself
    pinned: bool
    peer_notes: list[str] = field(default_factory=list)  # per peer: pinned or not, measured
    bursts: list[Burst] = field(default_factory=list)
    spy: SpyProfile | None = None


def _announce(upstream_url: str, server_url: str, peers: tuple[Target, ...]) -> None:
    print(f"bench upstream (fake intl backend) at {upstream_url}", flush=True)
    print(f"this server at {server_url}", flush=True)
    for peer in peers:
        print(
            f"peer {peer.name} at {peer.base}: it must relay {upstream_url} as its chat.qwen.ai "
            "base URL (any token is accepted there)",
            flush=True,
        )


def _peer_note(peer: Target, pinning: str) -> str:
    measured = (
        f"CPU and peak RSS read from /proc/{peer.pid}"
        if peer.pid is not None
        else "CPU and RSS not measured (no --compare-pid)"
    )
    return f"{peer.name} ({peer.base}, model `{peer.model}`): {pinning}; {measured}"


def _extras(procs: Processes, options: Options) -> tuple[list[Burst], SpyProfile | None]:
    bursts: list[Burst] = []
    if options.backlog:
        print("backlog: 1,000 connects at once", flush=True)
        for target in (procs.ours, *procs.peers):
            found = run_async(burst(target.name, target.base, target.probe_path))
            print(f"  {target.name}: {found.connected_in_window} connected within 1 s, "
                  f"{found.refused} refused, {found.failed} failed", flush=True)  # fmt: skip
            bursts.append(found)
    spied = None
    if options.spy:
        print("py-spy on this server, back to back", flush=True)
        configure_upstream(procs.upstream_url, 0.0, FRAMES)
        spied = profile(procs.server.pid, procs.ours.base)
        print(f"  {spied.samples} samples" + (f"; {spied.error}" if spied.error else ""))
    return bursts, spied


def run_session(options: Options) -> Session:
    pin = options.pin and pinning_possible()
    fake_core, server_core = (FAKE_CORE, SERVER_CORE) if pin else (None, None)
    port = options.upstream_port or (COMPARE_PORT if options.peers else 0)
    results: list[PacingResult] = []
    with (
        affinity(fake_core),  # the load generator shares the upstream's core
        bench_upstream(FRAMES, 0, port, core=fake_core) as (upstream, upstream_url),
        api_server(upstream_url, core=server_core) as (server, server_url),
        contextlib.ExitStack() as stack,
    ):
        _announce(upstream_url, server_url, options.peers)
        notes = []
        for peer in options.peers:
            wait_until_answering(peer)
            pinning = stack.enter_context(pinned_process(peer.pid, server_core))
            notes.append(_peer_note(peer, pinning))
        ours = Target(OURS, server_url, pid=server.pid)
        procs = Processes(server, ours, upstream, upstream_url, options.peers)
        for pacing in options.pacings:
            print(pacing.name, flush=True)
            results.append(run_pacing(procs, pacing))
        bursts, spied = _extras(procs, options)
    return Session(results, server.log, server.exited_by_itself, pin, notes, bursts, spied)
