"""Run the whole benchmark and write docs/performance.md: `python bench/run.py [--quick]`."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from clients import PLAN as CLIENT_PLAN
from clients import ClientResult, compare, completion_url, scaled
from document import Run, render
from procs import ROOT, bench_upstream, raise_open_file_limit
from profiling import Profile, profile_server
from scenario import FRAMES, Pacing, PacingResult, run_pacing

BACK_TO_BACK = Pacing("back-to-back", 0.0, ((1, 200), (100, 2000), (1000, 3000)))
PACED = Pacing("paced 20 ms", 20.0, ((1, 20), (100, 300), (1000, 1000)))
QUICK_DIVISOR = 10


def _scaled(pacing: Pacing, divisor: int) -> Pacing:
    return Pacing(pacing.name, pacing.pace_ms, scaled(pacing.plan, divisor))


def _plan_text(pacings: list[Pacing], client_plan: tuple[tuple[int, int], ...] | None) -> list[str]:
    sizes = [f"{p.name}: " + ", ".join(f"C={c}×{n}" for c, n in p.plan) for p in pacings]
    if client_plan is not None:
        sizes.append("clients: " + ", ".join(f"C={c}×{n}" for c, n in client_plan))
    return sizes


def _clients(plan: tuple[tuple[int, int], ...]) -> list[ClientResult]:
    print("upstream HTTP clients", flush=True)
    started = time.monotonic()
    with bench_upstream(FRAMES, 0) as (upstream, base):
        results = compare(completion_url(base), upstream.pid, plan)
    print(f"  {len(results)} runs in {time.monotonic() - started:.1f} s", flush=True)
    return results


def _profile() -> Profile:
    print("server under cProfile", flush=True)
    started = time.monotonic()
    profile = profile_server()
    print(
        f"  {profile.summary.requests} requests in {time.monotonic() - started:.1f} s", flush=True
    )
    return profile


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "performance.md", help="the report to write"
    )
    parser.add_argument("--skip-clients", action="store_true", help="no client comparison")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the server on one level (~30 s)"
    )
    args = parser.parse_args()
    divisor = QUICK_DIVISOR if args.quick else 1
    pacings = [_scaled(BACK_TO_BACK, divisor), _scaled(PACED, divisor)]
    client_plan = None if args.skip_clients else scaled(CLIENT_PLAN, divisor)
    raise_open_file_limit()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    results: list[PacingResult] = []
    for pacing in pacings:
        print(pacing.name, flush=True)
        results.append(run_pacing(pacing))
    clients = _clients(client_plan) if client_plan is not None else []
    profile = _profile() if args.profile else None
    run = Run(results, clients, args.quick, time.monotonic() - started, profile, load_before)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(run, _plan_text(pacings, client_plan)))
    print(f"wrote {args.out} after {run.seconds:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process the bench started has been stopped", file=sys.stderr)
        sys.exit(130)
