"""Both store backends keep the same promises, across two connections as across two processes:
lease caps hold and lapse, health and pauses are shared, conversations expire into the sweeper."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from qwen_free_api.store import Conversation, Store, open_store

from redis_server import redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "redis"])
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, redis_url: str
) -> AsyncIterator[tuple[Store, Store]]:
    """Two independent connections to one store (as two server processes would hold)."""
    url = f"sqlite:///{tmp_path / 'state.db'}" if request.param == "sqlite" else redis_url
    first, second = await open_store(url), await open_store(url)
    if request.param == "redis":
        await first._redis.flushdb()  # type: ignore[attr-defined]
    yield first, second
    await first.close()
    await second.close()


async def test_lease_cap_holds_across_connections(stores: tuple[Store, Store]) -> None:
    one, two = stores
    a = await one.acquire("acct", cap=2, ttl=60, interval=0)
    b = await two.acquire("acct", cap=2, ttl=60, interval=0)
    assert a is not None and b is not None
    assert await one.acquire("acct", cap=2, ttl=60, interval=0) is None
    assert await two.in_flight(["acct", "other"]) == {"acct": 2, "other": 0}
    await two.release(a)
    assert await one.acquire("acct", cap=2, ttl=60, interval=0) is not None


async def test_leases_of_a_dead_holder_lapse(stores: tuple[Store, Store]) -> None:
    one, two = stores
    assert await one.acquire("acct", cap=1, ttl=-1.0, interval=0) is not None  # already lapsed
    assert await two.acquire("acct", cap=1, ttl=60, interval=0) is not None


async def test_renewal_moves_a_lease_expiry(stores: tuple[Store, Store]) -> None:
    one, two = stores
    held = await one.acquire("acct", cap=1, ttl=60, interval=0)
    assert held is not None
    await one.renew(held, -1.0)  # renewed into the past: as good as lapsed
    other = await two.acquire("acct", cap=1, ttl=-1.0, interval=0)
    assert other is not None
    await two.renew(other, 60)  # renewed by its holder: it counts again
    assert await one.in_flight(["acct"]) == {"acct": 1}
    assert await one.acquire("acct", cap=1, ttl=60, interval=0) is None
    await two.release(other)
    await two.renew(other, 60)  # a released lease is not brought back
    assert await one.in_flight(["acct"]) == {"acct": 0}


async def test_minimum_interval_spaces_requests(stores: tuple[Store, Store]) -> None:
    one, two = stores
    first = await one.acquire("acct", cap=5, ttl=60, interval=2.0)
    second = await two.acquire("acct", cap=5, ttl=60, interval=2.0)
    assert first is not None and second is not None
    assert first.wait == 0.0
    assert 1.9 < second.wait <= 2.0


async def test_health_is_shared(stores: tuple[Store, Store]) -> None:
    one, two = stores
    until = time.time() + 3600
    await one.note_failure("acct", "quota", cooldown_until=until)
    await one.note_failure("acct", "later, shorter", cooldown_until=until - 100)
    await two.note_success("other")
    health = await two.health(["acct", "other"])
    assert health["acct"].failures == 2 and health["acct"].last_error == "later, shorter"
    assert health["acct"].cooldown_until == pytest.approx(until)
    assert health["other"].successes == 1
    await two.note_failure("acct", "ticket rejected", disabled="credential rejected")
    assert (await one.health(["acct"]))["acct"].disabled == "credential rejected"
    await one.set_disabled("acct", "")
    assert (await two.health(["acct"]))["acct"].disabled == ""


async def test_pauses_grow_and_reset(stores: tuple[Store, Store]) -> None:
    one, two = stores
    now = time.time()
    first = await one.pause("intl", 10, 100)
    second = await two.pause("intl", 10, 100)
    assert first - now == pytest.approx(10, abs=1) and second - now == pytest.approx(20, abs=1)
    assert await one.paused_until("intl") == pytest.approx(second)
    await two.resume("intl")
    assert await one.paused_until("intl") == 0.0


async def test_conversations_continue_anywhere_and_expire_to_the_sweeper(
    stores: tuple[Store, Store],
) -> None:
    one, two = stores
    now = time.time()
    live = Conversation("cn.s.r.t", "acct", "cn", "hash-1", now, now + 600, {"k": "v"})
    old = Conversation("intl.c.r", "acct", "intl", "hash-2", now - 900, now - 1)
    await one.put_conversation(live)
    await one.put_conversation(old)
    assert await two.conversation("cn.s.r.t") == live
    assert await two.conversation_by_prefix("hash-1") == live
    assert await two.conversation("intl.c.r") is None  # expired: not continued
    assert [c.id for c in await two.expired_conversations(now, 10)] == ["intl.c.r"]
    await two.drop_conversation("intl.c.r")
    assert await one.expired_conversations(now, 10) == []


async def test_accounts_are_stored(stores: tuple[Store, Store]) -> None:
    one, two = stores
    await one.put_account("id1", "secret-1")
    assert await two.accounts() == {"id1": "secret-1"}
    await two.drop_account("id1")
    assert await one.accounts() == {}
