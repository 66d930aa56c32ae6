"""The account pool: failures change credential state the way the rules say, requests avoid
cooling, paused, disabled and busy credentials, and the admin API shows and steers all of it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, body, chat, make_jwt, stream_chat

ADMIN = {"authorization": "Bearer admin-secret"}
CLIENT = {"authorization": "Bearer sk-client"}


def pool_server(make_server: Any, *tokens: str, **settings: Any) -> str:
    url: str = make_server(
        tokens=list(tokens), api_keys=["sk-client"], admin_key="admin-secret", **settings
    )
    return url


async def accounts(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    response = await client.get("/v1/accounts", headers=ADMIN)
    assert response.status_code == 200
    return {a["credential"]: a for a in response.json()["data"]}


async def test_quota_cools_the_credential_until_the_upstreams_reset(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(error="quota"))
    first = await chat(client, "intl", body("x"))
    second = await chat(client, "intl", body("x"))
    assert first.status_code == second.status_code == 429
    assert 10700 < int(second.headers["retry-after"]) <= 10801
    assert len(fake.chat_requests("intl")) == 1  # the cooling credential was not used


async def test_rejected_credential_is_disabled_and_shown(
    make_server: Any, fake: FakeUpstream
) -> None:
    async with httpx.AsyncClient(base_url=pool_server(make_server, CREDENTIALS["cn"])) as client:
        fake.enqueue("cn", Script(error="not_login"))
        first = await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
        second = await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
        [view] = (await accounts(client)).values()
    assert first.status_code == 401
    assert second.status_code == 503
    assert "disabled" in second.json()["error"]["message"]
    assert view["state"] == "disabled" and view["disabled_reason"] == "rejected by the upstream"
    assert view["failures"] == 1 and "CredentialRejected" in view["last_error"]
    assert CREDENTIALS["cn"] not in str(view)


async def test_waf_pauses_the_whole_backend(make_server: Any, fake: FakeUpstream) -> None:
    other = make_jwt({"id": "user-2", "exp": int(time.time()) + 3600})
    url = pool_server(make_server, CREDENTIALS["intl"], other)
    async with httpx.AsyncClient(base_url=url) as client:
        fake.enqueue("intl", Script(error="waf"))
        fake.enqueue("intl", Script(error="waf"))
        first = await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
        second = await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
        views = await accounts(client)
    assert first.status_code == second.status_code == 503
    assert 60 <= int(second.headers["retry-after"]) <= 121
    assert {v["state"] for v in views.values()} == {"paused"}


async def test_transient_failure_cools_briefly(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(transient_cooldown=30.0)
    async with httpx.AsyncClient(base_url=url) as client:
        fake.enqueue("cn", Script(error="http_500"))
        first = await chat(client, "cn", body("x"))
        second = await chat(client, "cn", body("x"))
    assert first.status_code == 502
    assert second.status_code == 429 and int(second.headers["retry-after"]) <= 31


async def _first_words(response: httpx.Response) -> AsyncIterator[str]:
    """Read a held stream up to its first words, keeping it open (the iterator stays alive)."""
    lines = response.aiter_lines()
    async for line in lines:
        if '"content":"hel' in line:
            break
    return lines


async def test_least_busy_credential_is_chosen_and_caps_hold(
    make_server: Any, fake: FakeUpstream
) -> None:
    other = make_jwt({"id": "user-2", "exp": int(time.time()) + 3600})
    url = pool_server(make_server, CREDENTIALS["intl"], other, account_concurrency=1)
    fake.enqueue("intl", Script(answer="held answer", hold_after=1))
    fake.enqueue("intl", Script(answer="held again", hold_after=1))
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body("a"), headers=CLIENT) as one,
        client.stream("POST", "/v1/chat/completions", json=body("b"), headers=CLIENT) as two,
    ):
        kept = [await _first_words(one), await _first_words(two)]
        busy = await client.post("/v1/chat/completions", json=body("c"), headers=CLIENT)
        views = await accounts(client)
        fake.release()
        fake.release()
        del kept
    assert busy.status_code == 429
    assert "concurrency" in busy.json()["error"]["message"]
    assert sorted(v["in_flight"] for v in views.values()) == [1, 1]
    tokens = {r.headers["authorization"] for r in fake.chat_requests("intl")}
    assert len(tokens) == 2  # the second request went to the idle credential


async def test_admin_api(make_server: Any, fake: FakeUpstream, tmp_path: Path) -> None:
    tokens_file = tmp_path / "tokens.txt"
    tokens_file.write_text(f"# my accounts\n{CREDENTIALS['intl']}\n\n")
    url = pool_server(make_server, CREDENTIALS["cn"], tokens_file=str(tokens_file))
    added_token = "cn:admin-added-ticket-0000000000"
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/v1/accounts", headers=CLIENT)).status_code == 401
        added = await client.post("/v1/accounts", json={"token": added_token}, headers=ADMIN)
        assert added.status_code == 201
        ident = added.json()["id"]
        views = await accounts(client)
        assert sorted(v["source"] for v in views.values()) == ["admin", "file", "settings"]
        assert "admin-added-ticket" not in str(views)
        disabled = await client.post(f"/v1/accounts/{ident}/disable", headers=ADMIN)
        assert disabled.json()["state"] == "disabled"
        enabled = await client.post(f"/v1/accounts/{ident}/enable", headers=ADMIN)
        assert enabled.json()["state"] == "live"
        settings_id = next(v["id"] for v in views.values() if v["source"] == "settings")
        refused = await client.delete(f"/v1/accounts/{settings_id}", headers=ADMIN)
        assert refused.status_code == 409
        deleted = await client.delete(f"/v1/accounts/{ident}", headers=ADMIN)
        assert deleted.json() == {"id": ident, "deleted": True}
        assert (await client.delete(f"/v1/accounts/{ident}", headers=ADMIN)).status_code == 404
        assert len(await accounts(client)) == 2


async def test_admin_api_is_off_without_a_key(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/accounts", headers=ADMIN)
    assert response.status_code == 404


async def test_disabled_credentials_are_skipped(make_server: Any, fake: FakeUpstream) -> None:
    other = make_jwt({"id": "user-2", "exp": int(time.time()) + 3600})
    url = pool_server(make_server, CREDENTIALS["intl"], other)
    async with httpx.AsyncClient(base_url=url) as client:
        views = await accounts(client)
        first_id = views[
            f"intl:{CREDENTIALS['intl'][:4]}…{CREDENTIALS['intl'][-4:]}({len(CREDENTIALS['intl'])})"
        ]["id"]
        await client.post(f"/v1/accounts/{first_id}/disable", headers=ADMIN)
        for _ in range(3):
            result = await stream_chat(client, "intl", body("x"), token="sk-client")
            assert result.content == "Echo: x"
    tokens = {r.headers["authorization"] for r in fake.chat_requests("intl")}
    assert tokens == {f"Bearer {other}"}


@pytest.mark.parametrize("expired", [True])
async def test_expired_jwt_is_not_used(make_server: Any, fake: FakeUpstream, expired: bool) -> None:
    old = make_jwt({"id": "old", "exp": int(time.time()) - 10})
    url = pool_server(make_server, old)
    async with httpx.AsyncClient(base_url=url) as client:
        response = await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
        [view] = (await accounts(client)).values()
    assert response.status_code == 503
    assert view["state"] == "expired" and view["expires_at"] < time.time()
    assert fake.chat_requests("intl") == []


async def test_disabling_calls_the_webhook_without_the_secret(
    make_server: Any, fake: FakeUpstream, fake_server: tuple[FakeUpstream, str]
) -> None:
    hook = fake_server[1] + "/hook"  # the fake records every request it gets
    url = pool_server(make_server, CREDENTIALS["cn"], webhook_url=hook)
    async with httpx.AsyncClient(base_url=url) as client:
        fake.enqueue("cn", Script(error="not_login"))
        await client.post("/v1/chat/completions", json=body("x"), headers=CLIENT)
    await fake.wait_for(lambda: any(r.path == "/hook" for r in fake.requests))
    [call] = [r for r in fake.requests if r.path == "/hook"]
    event = call.json()
    assert event["event"] == "credential_disabled" and event["dialect"] == "cn"
    assert event["reason"] == "rejected by the upstream"
    assert CREDENTIALS["cn"] not in call.body.decode()
