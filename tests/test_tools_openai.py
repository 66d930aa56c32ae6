"""Tool calling through OpenAI Chat Completions, end to end against the fake upstream: calls in
both stream shapes, results folded back with their ids, tool_choice, JSON mode, stop sequences,
and clients with their own tool protocol passing through."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, chat, stream_chat

DIALECTS = ["cn", "intl"]
WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
CALL = '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n[/function_calls]'


def ask(content: str = "weather in Paris?", **extra: Any) -> dict[str, Any]:
    return {
        "model": "qwen",
        "messages": [{"role": "user", "content": content}],
        "tools": [WEATHER],
        **extra,
    }


def prompt_sent(fake: FakeUpstream, dialect: Dialect, index: int = -1) -> str:
    content: str = fake.chat_requests(dialect)[index].json()["messages"][0]["content"]
    return content


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_call_streams_as_tool_calls_without_markup(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="Let me check.\n" + CALL, piece=4))
    result = await stream_chat(client, dialect, {**ask(), "stream": True})
    deltas = [c["choices"][0]["delta"] for c in result.chunks if c["choices"]]
    content = "".join(d.get("content") or "" for d in deltas)
    assert content == "Let me check.\n"
    calls = [tc for d in deltas for tc in d.get("tool_calls") or []]
    assert len(calls) == 1
    assert calls[0]["index"] == 0 and calls[0]["type"] == "function"
    assert calls[0]["id"].startswith("call_")
    assert calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert result.chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert result.done
    assert "get_weather" in prompt_sent(fake, dialect) and "[function_calls]" in prompt_sent(
        fake, dialect
    )


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_round_trip_folds_the_result_back_with_its_id(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=CALL))
    first = (await chat(client, dialect, ask())).json()
    message = first["choices"][0]["message"]
    assert message["content"] is None
    assert first["choices"][0]["finish_reason"] == "tool_calls"
    call = message["tool_calls"][0]
    follow = ask(
        messages=[
            {"role": "user", "content": "weather in Paris?"},
            message,
            {"role": "tool", "tool_call_id": call["id"], "content": "22C and sunny"},
        ]
    )
    fake.enqueue(dialect, Script(answer="It is 22C and sunny in Paris."))
    second = (await chat(client, dialect, follow)).json()
    assert second["choices"][0]["message"]["content"] == "It is 22C and sunny in Paris."
    assert second["choices"][0]["finish_reason"] == "stop"
    sent = prompt_sent(fake, dialect)
    assert f"[TOOL_RESULT for {call['id']}] 22C and sunny" in sent
    # The history matched the first answer, so only the new turn went upstream.
    assert "## Available tools" not in sent
    assert len(fake.sessions_created[dialect]) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_required_call_is_asked_again_once(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="The weather is probably nice."))
    fake.enqueue(dialect, Script(answer=CALL))
    result = await stream_chat(client, dialect, {**ask(tool_choice="required"), "stream": True})
    deltas = [c["choices"][0]["delta"] for c in result.chunks if c["choices"]]
    assert not "".join(d.get("content") or "" for d in deltas)  # the prose never went out
    assert [tc["function"]["name"] for d in deltas for tc in d.get("tool_calls") or []] == [
        "get_weather"
    ]
    assert len(fake.chat_requests(dialect)) == 2
    assert "did not call a tool" in prompt_sent(fake, dialect)
    assert "must call at least one tool" in prompt_sent(fake, dialect, 0)


async def test_a_named_choice_is_demanded(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer=CALL))
    choice = {"type": "function", "function": {"name": "get_weather"}}
    body = (await chat(client, "intl", ask(tool_choice=choice))).json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert "must call the tool `get_weather`" in prompt_sent(fake, "intl")


async def test_parallel_calls_keep_their_order(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    answer = (
        '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n'
        '[call:get_weather]{"city": "Rome"}[/call]\n[/function_calls]'
    )
    fake.enqueue("cn", Script(answer=answer, piece=2))
    result = await stream_chat(client, "cn", {**ask(), "stream": True})
    calls = [
        tc
        for c in result.chunks
        if c["choices"]
        for tc in c["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert [tc["index"] for tc in calls] == [0, 1]
    assert [json.loads(tc["function"]["arguments"])["city"] for tc in calls] == ["Paris", "Rome"]


async def test_own_tool_protocols_pass_through(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    cline = "<read_file>\n<path>src/main.py</path>\n</read_file>"
    fake.enqueue("intl", Script(answer=cline))
    body = {"model": "qwen", "messages": [{"role": "user", "content": "read it"}]}
    result = (await chat(client, "intl", body)).json()
    assert result["choices"][0]["message"]["content"] == cline
    fake.enqueue("intl", Script(answer=CALL))  # no `tools`: bracket text is just text
    assert (await chat(client, "intl", body)).json()["choices"][0]["message"]["content"] == CALL


async def test_json_mode_returns_parseable_json(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("cn", Script(answer='Here you go:\n```json\n{"score": 42}\n```'))
    schema = {"type": "object", "properties": {"score": {"type": "integer"}}}
    body = {
        "model": "qwen",
        "messages": [{"role": "user", "content": "score it"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}},
    }
    result = (await chat(client, "cn", body)).json()
    assert json.loads(result["choices"][0]["message"]["content"]) == {"score": 42}
    assert '"score":{"type":"integer"}' in prompt_sent(fake, "cn")


async def test_stop_sequences_end_the_answer(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="one, two, three, four", piece=2))
    body = {"model": "qwen", "messages": [{"role": "user", "content": "count"}], "stop": ["three"]}
    result = await stream_chat(client, "intl", {**body, "stream": True})
    text = "".join(
        c["choices"][0]["delta"].get("content") or "" for c in result.chunks if c["choices"]
    )
    assert text == "one, two, "
    assert result.chunks[-1]["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_tool_round_trip(server: str, fake: FakeUpstream, dialect: Dialect) -> None:
    client = openai.AsyncOpenAI(
        base_url=server + "/v1", api_key=CREDENTIALS[dialect], max_retries=0, timeout=30
    )
    fake.enqueue(dialect, Script(answer=CALL))
    fake.enqueue(dialect, Script(answer="Sunny."))
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    async with client:
        stream = await client.chat.completions.create(
            model="qwen",
            messages=messages,
            tools=[WEATHER],
            stream=True,
        )
        calls: dict[int, dict[str, str]] = {}
        async for chunk in stream:
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
                entry["id"] += tc.id or ""
                entry["name"] += (tc.function and tc.function.name) or ""
                entry["arguments"] += (tc.function and tc.function.arguments) or ""
        call = calls[0]
        assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                ],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": "22C"})
        final = await client.chat.completions.create(
            model="qwen",
            messages=messages,
            tools=[WEATHER],
        )
    assert final.choices[0].message.content == "Sunny."
    assert f"[TOOL_RESULT for {call['id']}] 22C" in prompt_sent(fake, dialect)


@pytest.mark.parametrize(
    ("asked", "intl_model", "cn_model"),
    [
        ("claude-opus-4-8", "qwen3.7-max", "Qwen3.8-Max"),
        ("claude-3-5-haiku-latest", "qwen3.5-flash", "Qwen3.6-Flash"),
        ("gemini-3.5-flash-lite", "qwen3.5-flash", "Qwen3.6-Flash"),
        ("gemini-2.5-flash", "qwen3.7-plus", "Qwen"),
        ("gemini-3.1-pro-preview", "qwen3.7-max", "Qwen3.8-Max"),
        ("gpt-5-codex", "qwen3.7-max", "Qwen3.8-Max"),
        ("gpt-4o-mini", "qwen3.5-flash", "Qwen3.6-Flash"),
        ("o3", "qwen3.7-max", "Qwen3.8-Max"),
        ("qwen3-coder-plus", "qwen3-coder-plus", "Qwen"),
    ],
)
async def test_client_model_names_map_to_qwen_models(
    client: httpx.AsyncClient, fake: FakeUpstream, asked: str, intl_model: str, cn_model: str
) -> None:
    body = {"model": asked, "messages": [{"role": "user", "content": "hi"}]}
    assert (await chat(client, "intl", body)).status_code == 200
    assert fake.chat_requests("intl")[-1].json()["model"] == intl_model
    assert (await chat(client, "cn", body)).status_code == 200
    sent = fake.chat_requests("cn")[-1].json()
    assert cn_model in json.dumps(sent, ensure_ascii=False)
