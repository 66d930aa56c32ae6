"""Two server processes on one Redis behave as one service: a cooldown set by one is honoured by
the other, a conversation started on one continues on the other, in-flight caps hold across both."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import redis

from qwen_free_api.testing import FakeUpstream, Script

from redis_server import redis_server
from support import CREDENTIALS, SERVE, body, free_port, wait_for_ping

CLIENT = {"authorization": "Bearer sk-shared"}


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


def _start(fake_url: str, redis_url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QFA_")},
        "QFA_STORE": redis_url,
        "QFA_TOKENS": CREDENTIALS["intl"],
        "QFA_API_KEYS": "sk-shared",
        "QFA_ACCOUNT_CONCURRENCY": "1",
        "QFA_LOG_LEVEL": "warning",
        **{f"QFA_{k}": fake_url for k in ("CN_BASE_URL", "CN_API_BASE_URL", "CN_SEC_BASE_URL")},
        "QFA_INTL_BASE_URL": fake_url,
    }
    process = subprocess.Popen([*SERVE, "--port", str(port)], env=env, cwd="/")
    url = f"http://127.0.0.1:{port}"
    wait_for_ping(process, url)
    return process, url


@pytest.fixture
def two_servers(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, redis_url: str
) -> Iterator[tuple[str, str]]:
    redis.Redis.from_url(redis_url).flushdb()
    _, fake_url = fake_server
    started = [_start(fake_url, redis_url) for _ in range(2)]
    try:
        yield started[0][1], started[1][1]
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(timeout=20)


@pytest.fixture
async def clients(two_servers: tuple[str, str]) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    one, two = two_servers
    async with (
        httpx.AsyncClient(base_url=one, headers=CLIENT, timeout=30) as a,
        httpx.AsyncClient(base_url=two, headers=CLIENT, timeout=30) as b,
    ):
        yield a, b


async def test_a_cooldown_set_by_one_is_honoured_by_the_other(
    clients: tuple[httpx.AsyncClient, ...], fake: FakeUpstream
) -> None:
    a, b = clients
    fake.enqueue("intl", Script(error="quota"))
    assert (await a.post("/v1/chat/completions", json=body("x", stream=False))).status_code == 429
    response = await b.post("/v1/chat/completions", json=body("x", stream=False))
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 10000
    assert len(fake.chat_requests("intl")) == 1


async def test_a_conversation_started_on_one_continues_on_the_other(
    clients: tuple[httpx.AsyncClient, ...], fake: FakeUpstream
) -> None:
    a, b = clients
    first = (await a.post("/v1/chat/completions", json=body("hi", stream=False))).json()
    follow = body("again", stream=False, conversation_id=first["id"])
    second = (await b.post("/v1/chat/completions", json=follow)).json()
    assert "(turn 2)" in second["choices"][0]["message"]["content"]


async def test_in_flight_caps_hold_across_both(
    clients: tuple[httpx.AsyncClient, ...], fake: FakeUpstream
) -> None:
    a, b = clients
    fake.enqueue("intl", Script(answer="held answer", hold_after=1))
    async with a.stream("POST", "/v1/chat/completions", json=body("x")) as held:
        lines = held.aiter_lines()
        async for line in lines:
            if '"content":"hel' in line:
                break
        busy = await b.post("/v1/chat/completions", json=body("y", stream=False))
        fake.release()
        async for _ in lines:
            pass
    assert busy.status_code == 429
    assert "concurrency" in busy.json()["error"]["message"]
    after = await b.post("/v1/chat/completions", json=body("z", stream=False))
    assert after.status_code == 200
