"""What happens around an answer: sessions deleted exactly once, clients that leave close the
upstream, slow upstreams get keep-alives, conversations continue, cn requests are signed."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, body, chat, make_jwt, stream_chat

DIALECTS = ["cn", "intl"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_each_session_is_deleted_exactly_once(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    async with httpx.AsyncClient(base_url=make_server(conversation_ttl=0), timeout=30) as client:
        await _three_answers(client, fake, dialect)
    await fake.wait_for(lambda: len(fake.sessions_deleted[dialect]) == 3)
    assert sorted(fake.sessions_deleted[dialect]) == sorted(fake.sessions_created[dialect])
    assert all(ident for _, ident in fake.delete_calls)
    assert len([c for c in fake.delete_calls if c[0] == dialect]) == 3


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_idle_sessions_are_swept_after_their_ttl(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    url = make_server(conversation_ttl=0.2, sweep_interval=0.05)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        await _three_answers(client, fake, dialect)
    await fake.wait_for(lambda: len(fake.sessions_deleted[dialect]) == 3)
    assert sorted(fake.sessions_deleted[dialect]) == sorted(fake.sessions_created[dialect])
    assert len([c for c in fake.delete_calls if c[0] == dialect]) == 3


async def _three_answers(client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect) -> None:
    await stream_chat(client, dialect, body("one"))
    await chat(client, dialect, body("two"))
    error = "quota" if dialect == "intl" else "error_frame"
    fake.enqueue(dialect, Script(answer="partial answer", error=error, error_after=1))
    await stream_chat(client, dialect, body("three"))


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_client_disconnect_closes_upstream_and_deletes_session(
    server: str, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="a long answer that never ends", hold_after=2))
    headers = {"authorization": f"Bearer {CREDENTIALS[dialect]}"}
    async with (
        httpx.AsyncClient(base_url=server, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=body("x"), headers=headers) as r,
    ):
        seen = 0
        async for line in r.aiter_lines():
            if line.startswith("data: ") and '"content"' in line:
                seen += 1
            if seen >= 2:
                break  # leave mid-stream: closing the client drops the connection
    await fake.wait_for(lambda: fake.disconnects == 1 and fake.open_streams == 0)
    await fake.wait_for(lambda: len(fake.sessions_deleted[dialect]) == 1)
    assert fake.sessions_deleted[dialect] == fake.sessions_created[dialect]


async def test_slow_first_byte_gets_keepalives_then_the_answer(
    make_server: Any, fake: FakeUpstream
) -> None:
    url = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("cn", Script(answer="late but fine", first_byte_delay=1.0))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        result = await stream_chat(client, "cn", body("x"))
    assert result.status == 200
    assert result.raw.startswith(": keep-alive\n\n")
    assert result.content == "late but fine"
    assert result.done


async def test_intl_keepalive_frames_do_not_commit_the_response(
    make_server: Any, fake: FakeUpstream
) -> None:
    url = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("intl", Script(answer="drawn", first_byte_delay=0.5, keepalive_every=0.1))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        result = await stream_chat(client, "intl", body("x"))
    assert result.raw.startswith(": keep-alive\n\n")
    assert result.chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert result.content == "drawn"


async def test_error_after_keepalives_is_in_band(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("cn", Script(error="not_login", first_byte_delay=0.5))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        result = await stream_chat(client, "cn", body("x"))
    assert result.status == 200
    assert result.raw.startswith(": keep-alive\n\n")
    assert [e["type"] for e in result.errors] == ["authentication_error"]
    assert result.done


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_conversation_id_continues_the_upstream_conversation(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    url = make_server(delete_sessions=False)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        first = (await chat(client, dialect, body("my name is Ada"))).json()
        follow = body("what is my name?", conversation_id=first["id"])
        second = (await chat(client, dialect, follow)).json()
    assert "(turn 2)" in second["choices"][0]["message"]["content"]
    one, two = (r.json() for r in fake.chat_requests(dialect)[-2:])
    if dialect == "cn":
        assert two["session_id"] == one["session_id"] and two["topic_id"] == one["topic_id"]
        assert two["parent_req_id"] == one["req_id"] and two["scene_param"] == "continue_chat"
        assert two["messages"][0]["content"] == "what is my name?"
    else:
        assert two["chat_id"] == one["chat_id"]
        assert two["parent_id"] == first["id"].split(".")[-1]
        assert two["messages"][0]["content"] == "what is my name?"
    assert fake.sessions_deleted[dialect] == []


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_foreign_conversation_id_is_a_400(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    other = "intl.a.b" if dialect == "cn" else "cn." + "0" * 32
    response = await chat(client, dialect, body("x", conversation_id=other))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "conversation_id"


async def test_cn_signing_in_hard_mode_uses_a_fresh_salt_each_time(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.sign_mode = "hard"
    for prompt in ("a", "b", "c", "d"):
        result = await stream_chat(client, "cn", body(prompt))
        assert result.content == f"Echo: {prompt}"
    salts = [r.headers["eo-clt-sacsft"] for r in fake.chat_requests("cn")]
    assert len(set(salts)) == len(salts) >= 4 and all(salts)
    assert all(r.headers["eo-clt-acs-kp"] == "" for r in fake.chat_requests("cn"))


@pytest.mark.parametrize("refusal", ["sign_hard", "sign_soft"])
async def test_refused_signature_registers_again_and_retries_once(
    client: httpx.AsyncClient, fake: FakeUpstream, refusal: str
) -> None:
    await stream_chat(client, "cn", body("warm up"))
    registrations = _registrations(fake)
    fake.enqueue("cn", Script(error=refusal))
    result = await stream_chat(client, "cn", body("again"))
    assert result.content == "Echo: again"
    assert _registrations(fake) == registrations + 1
    fake.enqueue("cn", Script(error=refusal))
    fake.enqueue("cn", Script(error=refusal))
    response = await chat(client, "cn", body("twice"))
    assert response.status_code == 502
    assert "signature" in response.json()["error"]["message"]


def _registrations(fake: FakeUpstream) -> int:
    return sum(1 for r in fake.requests if r.path.endswith("/access/register"))


async def test_pool_mode_fails_over_before_the_first_byte(
    make_server: Any, fake: FakeUpstream
) -> None:
    other = make_jwt({"id": "user-2", "exp": int(time.time()) + 3600})
    url = make_server(tokens=[CREDENTIALS["intl"], other], api_keys=["k1"])
    fake.enqueue("intl", Script(error="quota"))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await client.post(
            "/v1/chat/completions",
            json=body("x", stream=False),
            headers={"authorization": "Bearer k1"},
        )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: x"
    assert len(fake.chat_requests("intl")) == 2


async def test_cn_request_carries_the_browser_headers_and_signed_query(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    await stream_chat(client, "cn", body("x"))
    request = fake.chat_requests("cn")[-1]
    assert request.cookies["tongyi_sso_ticket"] == CREDENTIALS["cn"]
    assert "text/event-stream" in request.headers["accept"]
    assert request.headers["origin"] == "https://www.qianwen.com"
    assert request.headers["clt-acs-request-params"] == ",".join(request.query)
    assert request.query["ut"] and request.query["biz_id"] == "ai_qwen"
    assert request.headers["x-chat-id"] == json.loads(request.body)["req_id"]
