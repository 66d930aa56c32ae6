"""intl accounts given by email and password: signed in at start-up, renewed before expiry,
shown (masked, never the password) in the admin API; a refused sign-in leaves them out."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from qwen_free_api.testing import FAKE_EMAIL, FAKE_PASSWORD, FakeUpstream

KEY = {"authorization": "Bearer sk-client"}
ADMIN = {"authorization": "Bearer admin-secret"}
BODY = {"model": "qwen", "messages": [{"role": "user", "content": "hi"}]}


def login_server(make_server: Any, login: str) -> str:
    url: str = make_server(intl_logins=[login], api_keys=["sk-client"], admin_key="admin-secret")
    return url


def sign_ins(fake: FakeUpstream) -> list[Any]:
    return [r for r in fake.requests if r.path == "/api/v1/auths/signin"]


def chat_tokens(fake: FakeUpstream) -> list[str]:
    return [r.headers["authorization"] for r in fake.chat_requests("intl")]


async def test_a_login_answers_through_the_pool(make_server: Any, fake: FakeUpstream) -> None:
    url = login_server(make_server, f"{FAKE_EMAIL}:{FAKE_PASSWORD}")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answer = await client.post("/v1/chat/completions", json=BODY, headers=KEY)
        listed = await client.get("/v1/accounts", headers=ADMIN)
    assert answer.status_code == 200
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: hi"
    sent = sign_ins(fake)[0].json()
    assert sent == {
        "email": FAKE_EMAIL,
        "password": hashlib.sha256(FAKE_PASSWORD.encode()).hexdigest(),
    }
    (account,) = listed.json()["data"]
    assert account["source"] == "login" and account["state"] == "live"
    assert account["dialect"] == "intl" and account["expires_at"] is not None
    assert FAKE_PASSWORD not in listed.text and FAKE_EMAIL not in listed.text


async def test_a_token_near_expiry_is_renewed_before_use(
    make_server: Any, fake: FakeUpstream
) -> None:
    fake.signin_lifetime = 3600  # inside the default renewal window of a day
    url = login_server(make_server, f"{FAKE_EMAIL}:{FAKE_PASSWORD}")
    assert len(sign_ins(fake)) == 1
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        first = await client.post("/v1/chat/completions", json=BODY, headers=KEY)
        assert len(sign_ins(fake)) == 2  # renewed before the chat
        fake.signin_lifetime = 30 * 24 * 3600
        await client.post("/v1/chat/completions", json=BODY, headers=KEY)
        assert len(sign_ins(fake)) == 3  # the 1-hour token was renewed once more
        await client.post("/v1/chat/completions", json=BODY, headers=KEY)
        listed = await client.get("/v1/accounts", headers=ADMIN)
    assert first.status_code == 200
    assert len(sign_ins(fake)) == 3  # a 30-day token is not renewed
    tokens = chat_tokens(fake)
    assert tokens[1] == tokens[2] != tokens[0]
    assert len(listed.json()["data"]) == 1  # one account, whatever its token


async def test_a_refused_sign_in_leaves_the_account_out(
    make_server: Any, fake: FakeUpstream
) -> None:
    url = login_server(make_server, f"{FAKE_EMAIL}:wrong-password")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        answer = await client.post("/v1/chat/completions", json=BODY, headers=KEY)
        listed = await client.get("/v1/accounts", headers=ADMIN)
    assert len(sign_ins(fake)) == 1
    assert answer.status_code == 503
    assert "no upstream credential" in answer.json()["error"]["message"]
    assert listed.json()["data"] == []
