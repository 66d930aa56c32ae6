"""Run the whole benchmark and write docs/performance.md: `python bench/run.py [--quick]`.

`--compare URL` adds another OpenAI-compatible server, measured side by side with this one;
start it first, pointed at the bench upstream's port (18900 by default when comparing).
"""

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
from scenario import FRAMES, Pacing
from session import COMPARE_PORT, Options, run_session
from targets import Target, peer

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


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of the requests")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs" / "performance.md", help="the report to write"
    )
    parser.add_argument("--skip-clients", action="store_true", help="no client comparison")
    parser.add_argument(
        "--profile", action="store_true", help="also profile the server on one level (~30 s)"
    )
    parser.add_argument("--no-spy", action="store_true", help="no py-spy profile")
    parser.add_argument("--no-backlog", action="store_true", help="no 1,000-connect burst")
    parser.add_argument("--no-pin", action="store_true", help="do not pin processes to cores")
    parser.add_argument(
        "--upstream-port",
        type=int,
        default=0,
        help=f"port of the bench upstream (default: any; {COMPARE_PORT} with --compare)",
    )
    compare = parser.add_argument_group("comparison with another OpenAI-compatible server")
    compare.add_argument("--compare", metavar="URL", help="its base URL, e.g. http://host:9000")
    compare.add_argument("--compare-name", help="its name in the report (default: the URL)")
    compare.add_argument("--compare-model", help="the model to ask it for (default: ours)")
    compare.add_argument("--compare-key", help="its Bearer key (default: a bench JWT)")
    compare.add_argument(
        "--compare-pid",
        type=int,
        help="its PID: CPU and RSS of this process, all its threads (not its children)",
    )
    compare.add_argument(
        "--compare-probe-path", default="/v1/models", help="request of the backlog check"
    )
    return parser.parse_args()


def _peers(args: argparse.Namespace) -> tuple[Target, ...]:
    if not args.compare:
        return ()
    return (
        peer(
            args.compare,
            args.compare_name,
            args.compare_model,
            args.compare_key,
            args.compare_pid,
            args.compare_probe_path,
        ),
    )


def main() -> int:
    args = _arguments()
    divisor = QUICK_DIVISOR if args.quick else 1
    pacings = [_scaled(BACK_TO_BACK, divisor), _scaled(PACED, divisor)]
    client_plan = None if args.skip_clients else scaled(CLIENT_PLAN, divisor)
    raise_open_file_limit()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    options = Options(
        pacings,
        _peers(args),
        args.upstream_port,
        pin=not args.no_pin,
        backlog=not args.no_backlog,
        spy=not args.no_spy,
    )
    session = run_session(options)
    clients = _clients(client_plan) if client_plan is not None else []
    profile = _profile() if args.profile else None
    run = Run(session, clients, args.quick, time.monotonic() - started, profile, load_before)
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
