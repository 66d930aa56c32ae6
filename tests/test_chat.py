"""Chat Completions over both backends: stream and non-stream agree, reasoning and usage are
right, and every framing variant of the upstream yields exactly the same answer."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import body, chat, stream_chat

DIALECTS = ["cn", "intl"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stream_shape_and_text(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="你好，世界！Hello 🌍 world."))
    result = await stream_chat(client, dialect, body("hi"))
    assert result.status == 200
    assert result.headers["content-type"].startswith("text/event-stream")
    first = result.chunks[0]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"][0]["delta"]["role"] == "assistant"
    assert first["id"].startswith(f"chatcmpl-{dialect}.")
    assert first["model"] == "qwen"
    assert all(c["id"] == first["id"] and c["created"] == first["created"] for c in result.chunks)
    assert result.content == "你好，世界！Hello 🌍 world."
    assert result.finish_reasons == ["stop"]
    assert result.usage_chunks == []  # not asked for
    assert result.done and result.raw.rstrip().endswith("data: [DONE]")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_stream_is_the_same_answer(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="同一个答案 same answer"))
    streamed = await stream_chat(client, dialect, body("q"))
    fake.enqueue(dialect, Script(answer="同一个答案 same answer"))
    response = await chat(client, dialect, body("q"))
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["message"] == {"role": "assistant", "content": streamed.content}
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["id"].startswith(f"chatcmpl-{dialect}.")
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_default_answer_echoes_the_prompt(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    result = await stream_chat(client, dialect, body("what is 2+2?"))
    assert result.content == "Echo: what is 2+2?"
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        message = sent["messages"][0]
        assert message["content"] == "what is 2+2?"
        assert message["feature_config"]["output_schema"] == "phase"
        assert sent["incremental_output"] is True
    else:
        assert sent["messages"][0]["content"] == "what is 2+2?"
        assert sent["scene_param"] == "first_turn" and sent["parent_req_id"] == "0"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(
    "switch",
    [{"reasoning_effort": "high"}, {"enable_thinking": True}, {"model": "qwen-thinking"}],
)
async def test_reasoning_arrives_as_reasoning_content(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, switch: dict[str, Any]
) -> None:
    fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 17×20 − 17 = 323"))
    result = await stream_chat(client, dialect, body("17*19?", **switch))
    assert result.reasoning == "17×19 = 17×20 − 17 = 323"
    assert result.content == "323"
    assert "[(" not in result.content
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["feature_config"]["thinking_enabled"] is True
    else:
        assert sent["deep_search"] == "1"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reasoning_in_non_stream_and_fast_suffix(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="ok", reasoning="thinking it over"))
    data = (await chat(client, dialect, body("x", reasoning_effort="medium"))).json()
    assert data["choices"][0]["message"]["reasoning_content"] == "thinking it over"
    await stream_chat(client, dialect, body("x", model="qwen-fast", enable_thinking=True))
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["feature_config"]["thinking_enabled"] is False
    else:
        assert sent["deep_search"] == "0"


async def test_intl_detail_thinking_format(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(intl_thinking_format="detail")
    fake.enqueue("intl", Script(answer="A", reasoning="step one, step two"))
    async with httpx.AsyncClient(base_url=url) as client:
        result = await stream_chat(client, "intl", body("x", enable_thinking=True))
    assert result.reasoning == "step one, step two"
    assert (
        fake.chat_requests("intl")[-1].json()["messages"][0]["feature_config"]["thinking_format"]
        == "detail"
    )


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reasoning_inside_think_tags_when_configured(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    url = make_server(reasoning_in_content=True)
    fake.enqueue(dialect, Script(answer="final", reasoning="because"))
    async with httpx.AsyncClient(base_url=url) as client:
        result = await stream_chat(client, dialect, body("x", enable_thinking=True))
        fake.enqueue(dialect, Script(answer="final", reasoning="because"))
        data = (await chat(client, dialect, body("x", enable_thinking=True))).json()
    expected = "<think>\nbecause\n</think>\n\nfinal"
    assert result.content == expected and result.reasoning == ""
    assert data["choices"][0]["message"]["content"] == expected


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_include_usage_reports_upstream_counts(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="abcdef", usage_numbers=(842, 11)))
    result = await stream_chat(client, dialect, body("x", stream_options={"include_usage": True}))
    [usage_chunk] = result.usage_chunks
    assert result.chunks[-1] is usage_chunk
    usage = usage_chunk["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (842, 11)
    assert usage["total_tokens"] == 853
    assert "estimated" not in usage


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_usage_is_estimated_and_says_so_when_upstream_has_none(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="four words right here", usage=False))
    result = await stream_chat(
        client, dialect, body("count me", stream_options={"include_usage": True})
    )
    usage = result.usage_chunks[0]["usage"]
    assert usage["estimated"] is True
    assert usage["completion_tokens"] == 4 and usage["prompt_tokens"] == 2


CN_VARIANTS = [
    {"duplicates": True},
    {"split_multibyte": True},
    {"heartbeats": True},
    {"no_event_lines": True},
    {"complete_json": True},
    {"crlf": True},
    {"chunk_bytes": 1},
    {"chunk_bytes": 7, "duplicates": True, "split_multibyte": True, "crlf": True},
    {"piece": 1},
]
INTL_VARIANTS = [
    {"heartbeats": True},
    {"crlf": True},
    {"done_marker": True},
    {"chunk_bytes": 1},
    {"chunk_bytes": 5, "crlf": True},
    {"piece": 1},
]
ANSWER = "千问回答：多字节字符🌍与 ASCII 混排, tail."


@pytest.mark.parametrize(
    ("dialect", "variant"),
    [("cn", v) for v in CN_VARIANTS] + [("intl", v) for v in INTL_VARIANTS],
)
async def test_framing_variants_give_identical_answers(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, variant: dict[str, Any]
) -> None:
    fake.enqueue(dialect, Script(answer=ANSWER, reasoning="想一想", **variant))
    result = await stream_chat(client, dialect, body("x", enable_thinking=True))
    assert result.status == 200
    assert result.content == ANSWER
    assert result.reasoning == "想一想"
    assert "\ufffd" not in result.content
    assert result.finish_reasons == ["stop"] and result.errors == []


async def test_cn_progress_and_placeholders_never_leak(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("cn", Script(answer="答案", reasoning="思考", search_results=[]))
    result = await stream_chat(client, "cn", body("x", enable_thinking=True))
    assert result.content == "答案"
    assert "正在" not in result.content + result.reasoning


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_search_results_become_citations(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    sources = [
        {
            "title": "Qwen",
            "url": "https://qwen.example/a",
            "hostname": "qwen.example",
            "snippet": "s",
        },
        {"title": "B", "url": "https://b.example/b", "hostname": "b.example", "snippet": "t"},
    ]
    fake.enqueue(dialect, Script(answer="See [[1]].", search_results=sources))
    result = await stream_chat(client, dialect, body("x", enable_search=True))
    cited = [url for c in result.chunks for url in c.get("citations", [])]
    assert cited == ["https://qwen.example/a", "https://b.example/b"]
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["chat_type"] == "search"
    else:
        assert sent["enable_search"] is True
    fake.enqueue(dialect, Script(answer="See [[1]].", search_results=sources))
    data = (await chat(client, dialect, body("x", model="qwen-search"))).json()
    annotations = data["choices"][0]["message"]["annotations"]
    assert annotations[0]["url_citation"]["url"] == "https://qwen.example/a"


async def test_cn_moderation_keeps_text_and_reports_content_filter(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("cn", Script(answer="这是一段会被拦截的回答", moderation=True, error_after=2))
    result = await stream_chat(client, "cn", body("x"))
    assert result.content and "这是一段会被拦截的回答".startswith(result.content)
    assert result.finish_reasons == ["content_filter"]
    assert result.errors == []


async def test_history_is_folded_into_one_labelled_prompt(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    payload = {
        "model": "qwen",
        "stream": True,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": [{"type": "text", "text": "And now?"}]},
        ],
    }
    await stream_chat(client, "intl", payload)
    content = fake.chat_requests("intl")[-1].json()["messages"][0]["content"]
    assert content == "System: Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: And now?"
