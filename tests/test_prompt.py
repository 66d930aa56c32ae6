"""History folding: one labelled prompt, within a budget that drops the oldest turns first but
never the system prompt or the last turn, and says so in a response header."""

from __future__ import annotations

from typing import Any

import httpx

from qwen_free_api.chat import ChatRequest, Message
from qwen_free_api.prompt import fit, flatten
from qwen_free_api.testing import FakeUpstream

from support import chat


def request(*messages: tuple[str, str]) -> ChatRequest:
    return ChatRequest("qwen", tuple(Message(role, text) for role, text in messages))  # type: ignore[arg-type]


def test_fit_drops_oldest_turns_but_keeps_system_and_last() -> None:
    big = request(
        ("system", "rules"),
        ("user", "a" * 100),
        ("assistant", "b" * 100),
        ("user", "c" * 100),
        ("assistant", "d" * 100),
        ("user", "last question"),
    )
    fitted, dropped = fit(big, 260)
    assert dropped == 2
    assert [m.role for m in fitted.messages] == ["system", "user", "assistant", "user"]
    assert fitted.messages[-1].text == "last question"
    unchanged, none = fit(big, 10_000)
    assert unchanged is big and none == 0
    tiny, _ = fit(big, 1)
    assert [m.text for m in tiny.messages] == ["rules", "last question"]


def test_flatten_labels_every_turn() -> None:
    folded = flatten(
        request(("system", "S"), ("user", "U"), ("assistant", "A"), ("tool", "T")).messages
    )
    assert folded == "System: S\n\nUser: U\n\nAssistant: A\n\nTool: [TOOL_RESULT for unknown] T"


async def test_dropped_history_is_announced(make_server: Any, fake: FakeUpstream) -> None:
    payload = {
        "model": "qwen",
        "messages": [
            {"role": "system", "content": "rules"},
            {"role": "user", "content": "old " * 100},
            {"role": "assistant", "content": "older answer " * 30},
            {"role": "user", "content": "new question"},
        ],
    }
    async with httpx.AsyncClient(base_url=make_server(prompt_budget=200)) as client:
        response = await chat(client, "intl", payload)
        whole = await chat(client, "intl", {**payload, "messages": payload["messages"][-1:]})
    assert response.headers["x-qfa-history-dropped"] == "2"
    assert "x-qfa-history-dropped" not in whole.headers
    sent = fake.chat_requests("intl")[0].json()["messages"][0]["content"]
    assert sent == "System: rules\n\nUser: new question"
