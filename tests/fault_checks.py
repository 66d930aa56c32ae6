"""The fault matrix's checks: what the client must see (Ok / Early / InBand), that nothing
leaked (fake upstream and pool), and the state the pool left the accounts in."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx

from dialect_probe import Probe, Reply
from qwen_free_api.testing import FakeUpstream

ADMIN_KEY = "admin-matrix"


@dataclass(frozen=True)
class Ok:
    """A whole answer: exact text, normalised finish reason, reasoning, usage (if given)."""

    text: str
    finish: str = "stop"
    reasoning: str = ""
    usage: tuple[int, int] | None = None


@dataclass(frozen=True)
class Early:
    """Failure before the first byte: this HTTP status (stream or not), the dialect's error."""

    status: int
    kind: str
    retry_after: str | None = None


@dataclass(frozen=True)
class InBand:
    """Failure after the first byte: streamed, `text` then the dialect's in-band error and its
    terminator; not streamed, `status` (and Retry-After) like an early failure."""

    status: int
    kind: str
    text: str
    retry_after: str | None = None


Expect = Ok | Early | InBand


def check_reply(probe: Probe, expect: Expect, reply: Reply, *, stream: bool, hold: bool) -> None:
    if isinstance(expect, Ok):
        assert (reply.status, reply.error) == (200, None), reply.raw
        assert reply.streamed == stream
        assert reply.text == expect.text and "\ufffd" not in reply.text
        assert reply.reasoning == expect.reasoning
        assert reply.finish == expect.finish
        assert not stream or reply.terminated, "the stream did not end with its terminator"
        assert not hold or not stream or reply.keepalives >= 1
        if expect.usage is not None:
            assert reply.usage == expect.usage
        return
    if isinstance(expect, InBand) and stream:
        assert reply.status == 200 and reply.streamed, reply.raw
        assert reply.text == expect.text, "the partial answer was not kept as it was"
        assert reply.finish is None, "a failed answer must not look finished"
        probe.check_error(reply, expect.kind, expect.status, in_band=True)
        assert reply.terminated, "the stream did not end with the error and its terminator"
        return
    assert reply.status == expect.status, reply.raw
    assert not reply.streamed and reply.headers["content-type"].startswith("application/json")
    assert reply.headers.get("retry-after") == expect.retry_after
    assert reply.text == ""
    probe.check_error(reply, expect.kind, expect.status, in_band=False)


async def check_nothing_leaked(client: httpx.AsyncClient, fake: FakeUpstream, backend: str) -> None:
    """The fake has no request or stream open and every session it created was deleted (the
    deletes run in the background); the pool holds no lease."""

    def settled() -> bool:
        with fake.locked():
            created = sorted(fake.sessions_created[backend])
            deleted = sorted(fake.sessions_deleted[backend])
            return fake.open_streams == fake.open_requests == 0 and created == deleted

    try:
        await fake.wait_for(settled, timeout=20)
    except TimeoutError:
        with fake.locked():
            created = set(fake.sessions_created[backend])
            left = created - set(fake.sessions_deleted[backend])
            counts = (fake.open_streams, fake.open_requests)
        raise AssertionError(
            f"leak: (open streams, open requests) = {counts}; sessions never deleted: {left}"
        ) from None
    assert all(ident for _, ident in fake.delete_calls), "a delete with an empty id"
    views = await accounts(client)
    assert [v["in_flight"] for v in views] == [0, 0], "a lease is still held"


async def accounts(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await client.get("/v1/accounts", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert response.status_code == 200
    views: list[dict[str, Any]] = response.json()["data"]
    return views


def check_accounts(views: list[dict[str, Any]], expected: tuple[str, str]) -> None:
    """States as the pool rules say; "cooling:N" also checks the cooldown is about N s."""
    now = time.time()
    seen = []
    for view in views:
        state = view["state"]
        if state == "cooling":
            assert view["disabled_reason"] is None
            left = view["cooldown_until"] - now
            wanted = next(int(e[8:]) for e in expected if e.startswith("cooling:"))
            assert wanted - 120 < left <= wanted + 1, (left, wanted)
            state = f"cooling:{wanted}"
        elif state in ("live", "paused"):  # not blamed: no cooldown, not disabled
            assert view["cooldown_until"] is None and view["disabled_reason"] is None, view
        else:
            assert state == "disabled" and view["disabled_reason"], view
        seen.append(state)
    assert tuple(sorted(seen)) == tuple(sorted(expected)), views
