"""Soak and chaos, bounded (about a minute of work).

One real server process takes ~200 concurrent streams across the client dialects: answers,
slow answers, clients leaving mid-answer or before the headers, error frames mid-stream, 5xx
before the first byte, EOF without finish, an upstream gone silent. Every request must end
well-formed; afterwards nothing may be left behind (tasks, upstream requests, leases, sessions,
file descriptors) and memory must be back near its level after warm-up.

Then two instances on one Redis: one is SIGKILLed mid-stream; the other keeps serving, and the
dead one's leases lapse after QFA_LEASE_TTL while the live one's, renewed, still count.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis

import soak_traffic
from qwen_free_api.testing import FakeUpstream, Script
from soak_server import (
    ServerProcess,
    as_mb,
    check_log,
    eventually,
    figures,
    sample_peaks,
    server_env,
)

from redis_server import redis_server
from support import make_jwt

pytestmark = pytest.mark.soak

KEY, ADMIN = "sk-soak-client", "admin-soak-key"
CN_TICKETS = [f"tk-soak{n}-0123456789abcdefghijklmnopqrstuvwxyz" for n in range(2)]
INTL_TOKENS = [make_jwt({"id": f"soak-{n}", "exp": int(time.time()) + 86400}) for n in range(2)]
SECRETS = [KEY, ADMIN, *CN_TICKETS, *INTL_TOKENS]
WIDTH = 200  # concurrent streams
WARMUP = 400  # requests before the baseline figures
WORK = 4000  # requests of the soak proper: ~50 s on a quiet 2-core machine, ~3 min on a busy one
RSS_MARGIN = 0.25  # end RSS may exceed the warmed-up RSS by at most this fraction
FD_MARGIN = 2  # fds other than kept-alive upstream sockets may exceed the warmed-up count by this


@pytest.fixture
def soak_server(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, tmp_path: Path
) -> Iterator[ServerProcess]:
    _, fake_url = fake_server
    env = server_env(
        fake_url,
        store=f"sqlite:///{tmp_path}/state.db",
        tokens=",".join([*CN_TICKETS, *INTL_TOKENS]),
        api_keys=KEY,
        admin_key=ADMIN,
        account_concurrency="100",
        transient_cooldown="0",  # a 5xx must not bench the account for the rest of the soak
        conversation_ttl="0",  # delete every upstream session once answered
        read_timeout="3",  # the stalled upstream is given up after 3 s
    )
    server = ServerProcess(env, tmp_path / "server.log", ADMIN).start()
    try:
        yield server
    finally:
        server.stop()


async def _quiet(server: ServerProcess, client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    """Wait until no request is open anywhere and every upstream session is cleaned up."""

    async def settled() -> bool:
        metrics = await server.metrics(client)
        return (
            fake.open_requests == 0
            and fake.open_streams == 0
            and metrics["qfa_streams_in_flight"] == 0
            and await server.in_flight(client) == 0
            and all(
                sorted(fake.sessions_created[d]) == sorted(fake.sessions_deleted[d])
                for d in ("cn", "intl")
            )
        )

    await eventually(settled, "no open request, lease or upstream session")


async def test_soak_two_hundred_streams_leave_nothing_behind(
    soak_server: ServerProcess, fake: FakeUpstream, fake_server: tuple[FakeUpstream, str]
) -> None:
    server, fake_port = soak_server, int(fake_server[1].rsplit(":", 1)[1])
    soak_traffic.register(fake)
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        start = await figures(server, client, fake_port)
        warm = await soak_traffic.drive(server.url, KEY, 0, WARMUP, WIDTH)
        assert not warm.bad, "\n".join(warm.bad)
        await _quiet(server, client, fake)
        base = await figures(server, client, fake_port)
        peaks = dict(base)
        began = time.monotonic()
        async with anyio.create_task_group() as group:
            group.start_soon(sample_peaks, server, client, fake_port, peaks)
            tally = await soak_traffic.drive(server.url, KEY, WARMUP, WORK, WIDTH)
            group.cancel_scope.cancel()
        elapsed = time.monotonic() - began
        created = {d: len(fake.sessions_created[d]) for d in ("cn", "intl")}
        await _quiet(server, client, fake)

        async def tasks_back() -> bool:
            return (await server.metrics(client))["qfa_asyncio_tasks"] <= base["tasks"]

        def own_fds(figures: dict[str, int]) -> int:  # idle upstream sockets are curl's cache
            return figures["fds"] - figures["upstream_sockets"]

        async def fds_back() -> bool:
            now = {"fds": server.fds(), "upstream_sockets": server.upstream_sockets(fake_port)}
            return own_fds(now) <= own_fds(base) + FD_MARGIN

        await eventually(tasks_back, f"asyncio tasks back to {base['tasks']}")
        await eventually(fds_back, f"fds but upstream sockets back to {own_fds(base)}")
        end = await figures(server, client, fake_port)
    report = [
        f"soak: {tally.total()} requests in {elapsed:.1f} s, {tally.peak} concurrent"
        f" (after {warm.total()} warm-up requests)",
        tally.table(),
        f"fake: {fake.disconnects} upstream streams left by the server mid-answer;"
        f" sessions created {created}, every one deleted",
    ]
    for name, show in (("rss", as_mb), ("tasks", str), ("fds", str), ("upstream_sockets", str)):
        report.append(
            f"{name}: start {show(start[name])}, warmed {show(base[name])},"
            f" peak {show(peaks[name])}, end {show(end[name])}"
        )
    print("\n" + "\n".join(report))
    assert not tally.bad, "\n".join(tally.bad)
    assert tally.total() == WORK and tally.peak == WIDTH
    left = tally.outcomes[("disconnect", "left")]
    assert left > 0 and fake.disconnects >= left  # each one stopped its upstream stream too
    assert end["rss"] <= base["rss"] * (1 + RSS_MARGIN)
    assert end["upstream_sockets"] <= WIDTH  # idle kept-alive ones only: no request is open
    assert check_log(server, SECRETS) == []


# --- two instances on one Redis -----------------------------------------------------------

TTL = 2.0  # QFA_LEASE_TTL of both instances: the dead one's leases lapse this long after death
CAP = 4


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def pair(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, redis_url: str, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    redis.Redis.from_url(redis_url).flushdb()
    env = server_env(
        fake_server[1],
        store=redis_url,
        tokens=INTL_TOKENS[0],
        api_keys=KEY,
        admin_key=ADMIN,
        account_concurrency=str(CAP),
        lease_ttl=str(TTL),
    )
    one = ServerProcess(env, tmp_path / "one.log", ADMIN).start()
    two = ServerProcess(env, tmp_path / "two.log", ADMIN)
    try:
        two.start()
        yield one, two
    finally:
        one.kill()
        two.stop()


class Held:
    """A streamed answer the fake holds after its first words."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.response: httpx.Response | None = None
        self.lines: AsyncIterator[str] | None = None

    async def open(self, n: int) -> Held:
        body = {"model": "qwen", "stream": True}
        body["messages"] = [{"role": "user", "content": f"[held] {n}"}]
        request = self.client.build_request("POST", "/v1/chat/completions", json=body)
        self.response = await self.client.send(request, stream=True)
        assert self.response.status_code == 200
        self.lines = self.response.aiter_lines()
        async for line in self.lines:
            if '"content":"' in line and '"content":""' not in line:
                return self
        raise AssertionError("the held answer never started")

    async def finish(self) -> list[str]:
        assert self.lines is not None and self.response is not None
        rest = [line async for line in self.lines if line.startswith("data: ")]
        await self.response.aclose()
        return rest


def _live_leases(store: redis.Redis) -> list[float]:
    """Expiry times of the unexpired leases of every credential."""
    now = time.time()
    found: list[float] = []
    for key in store.scan_iter("qfa:leases:*"):
        rows: Any = store.zrangebyscore(key, now, "+inf", withscores=True)
        found += [float(score) for _, score in rows]
    return found


async def test_a_killed_instance_leases_lapse_and_the_other_keeps_serving(
    pair: tuple[ServerProcess, ServerProcess], fake: FakeUpstream, redis_url: str
) -> None:
    one, two = pair
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    fake.script_for_prompt("[held]", Script(answer="held answer", hold_after=1))
    auth = {"authorization": f"Bearer {KEY}"}
    async with (
        httpx.AsyncClient(base_url=one.url, headers=auth, timeout=30) as a,
        httpx.AsyncClient(base_url=two.url, headers=auth, timeout=30) as b,
    ):
        doomed = [await Held(a).open(n) for n in range(2)]
        kept = [await Held(b).open(n) for n in range(2, 4)]
        taken = time.time()
        await fake.wait_for(lambda: fake.held_streams == CAP)
        assert len(_live_leases(store)) == CAP
        full = await b.post("/v1/chat/completions", json=_ask("over the cap"))
        assert full.status_code == 429  # the cap holds across both instances

        one.kill()
        await fake.wait_for(lambda: fake.held_streams == 2, timeout=30)  # its upstreams closed

        async def lapsed() -> bool:  # one's leases gone; two's renewed past their first TTL
            live = _live_leases(store)
            return len(live) == 2 and min(live) > taken + TTL

        waited = await eventually(lapsed, "the dead instance's leases lapse", timeout=10 * TTL)
        assert await two.in_flight(b) == 2
        more = [await Held(b).open(n) for n in range(4, 6)]  # the dead one's capacity is back
        full = await b.post("/v1/chat/completions", json=_ask("over the cap again"))
        assert full.status_code == 429  # and two's own old leases still count
        fake.release()
        for held in [*kept, *more]:
            events = await held.finish()
            assert events[-1] == "data: [DONE]" and '"finish_reason":"stop"' in events[-2]
        for held in doomed:
            with pytest.raises(httpx.TransportError):
                await held.finish()
        after = await b.post("/v1/chat/completions", json=_ask("after"))
        assert after.status_code == 200 and "Echo: after" in after.text
        assert await two.in_flight(b) == 0
    print(f"\nredis pair: the killed instance's leases lapsed {waited:.1f} s after the kill"
          f" (lease TTL {TTL} s)")  # fmt: skip
    assert check_log(two, SECRETS) == []


def _ask(text: str) -> dict[str, object]:
    return {"model": "qwen", "messages": [{"role": "user", "content": text}], "stream": False}
