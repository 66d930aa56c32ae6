"""Conversations continue natively: by id, by a resent history, after a restart, and from
another server process sharing the store; unknown ids are refused, never silently restarted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from qwen_free_api.app import create_app
from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, ServerThread

from support import body, chat, settings_for

DIALECTS = ["cn", "intl"]


def history(*turns: str) -> list[dict[str, str]]:
    roles = ["user", "assistant"]
    return [{"role": roles[i % 2], "content": text} for i, text in enumerate(turns)]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_resent_history_continues_the_session(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    first = (await chat(client, dialect, body("my name is Ada"))).json()
    answer = first["choices"][0]["message"]["content"]
    payload = {"model": "qwen", "messages": history("my name is Ada", answer, "my name?")}
    second = (await chat(client, dialect, payload)).json()
    assert "(turn 2)" in second["choices"][0]["message"]["content"]
    sent = fake.chat_requests(dialect)[-1].json()
    assert sent["messages"][0]["content"] == "my name?"  # only the new turn went upstream
    answer2 = second["choices"][0]["message"]["content"]
    payload = {
        "model": "qwen",
        "messages": history("my name is Ada", answer, "my name?", answer2, "and again?"),
    }
    third = (await chat(client, dialect, payload)).json()
    assert "(turn 3)" in third["choices"][0]["message"]["content"]
    assert len(fake.sessions_created[dialect]) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_changed_history_starts_afresh(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    await chat(client, dialect, body("hello"))
    payload = {"model": "qwen", "messages": history("hello", "a different answer", "next")}
    response = await chat(client, dialect, payload)
    assert "(turn" not in response.json()["choices"][0]["message"]["content"]
    sent = fake.chat_requests(dialect)[-1].json()
    assert "a different answer" in sent["messages"][0]["content"]  # the folded history
    assert len(fake.sessions_created[dialect]) == 2


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_conversation_id_survives_a_restart(
    fake_server: tuple[FakeUpstream, str], fake: FakeUpstream, tmp_path: Path, dialect: Dialect
) -> None:
    _, url = fake_server
    state = tmp_path / "state.db"
    with ServerThread(create_app(settings_for(url, state))) as first_server:
        async with httpx.AsyncClient(base_url=first_server.url, timeout=30) as client:
            first = (await chat(client, dialect, body("remember 42"))).json()
    with ServerThread(create_app(settings_for(url, state))) as second_server:
        async with httpx.AsyncClient(base_url=second_server.url, timeout=30) as client:
            follow = body("what number?", conversation_id=first["id"])
            second = (await chat(client, dialect, follow)).json()
    assert "(turn 2)" in second["choices"][0]["message"]["content"]


async def test_unknown_conversation_id_is_refused(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    response = await chat(client, "cn", body("x", conversation_id="cn." + "ab" * 48))
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "conversation_id"
    assert fake.chat_requests("cn") == []


async def test_conversation_ttl_zero_deletes_at_once_and_forgets(
    make_server: Any, fake: FakeUpstream
) -> None:
    async with httpx.AsyncClient(base_url=make_server(conversation_ttl=0), timeout=30) as client:
        first = (await chat(client, "intl", body("hi"))).json()
        again = await chat(client, "intl", body("again", conversation_id=first["id"]))
    assert again.status_code == 400
    await fake.wait_for(lambda: len(fake.sessions_deleted["intl"]) == 1)
