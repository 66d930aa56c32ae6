"""The Anthropic Messages dialect over real HTTP: the SSE grammar event by event, thinking,
tool_use round trips, count_tokens, the model list, ping keep-alives, every error class in
Anthropic's envelope, and a request shaped like Claude Code's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from qwen_free_api.chat import ToolCall
from qwen_free_api.credentials import Dialect
from qwen_free_api.dialects import Meta
from qwen_free_api.dialects.anthropic_render import render_stream
from qwen_free_api.events import (
    Finish,
    Heartbeat,
    Opened,
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCalled,
    Usage,
)
from qwen_free_api.sse import encode
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

DIALECTS = ["cn", "intl"]
MODEL = "qwen3.7-plus"
CALL = '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n[/function_calls]'
WEATHER = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
}
DELTA_TYPES = {
    "text": {"text_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
}
USAGE_KEYS = {
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "cache_creation",
}


def headers(dialect: Dialect, *, bearer: bool = False) -> dict[str, str]:
    key = CREDENTIALS[dialect]
    auth = {"authorization": f"Bearer {key}"} if bearer else {"x-api-key": key}
    return {
        **auth,
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,unknown-beta",
    }


def ask(prompt: str = "hi", **extra: Any) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": prompt}],
        **extra,
    }


def prompt_sent(fake: FakeUpstream, dialect: Dialect, index: int = -1) -> str:
    content: str = fake.chat_requests(dialect)[index].json()["messages"][0]["content"]
    return content


def thinking_sent(fake: FakeUpstream, dialect: Dialect) -> bool:
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        return bool(sent["messages"][0]["feature_config"]["thinking_enabled"])
    return bool(sent["deep_search"] == "1")


def search_sent(fake: FakeUpstream, dialect: Dialect) -> bool:
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        return bool(sent["messages"][0]["chat_type"] == "search")
    return sent.get("enable_search") is True


# The stream grammar


@dataclass
class Streamed:
    """A checked stream: the message skeleton, its blocks, the final delta, or the error."""

    status: int
    raw: str
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    message: dict[str, Any] = field(default_factory=dict)
    blocks: list[dict[str, Any]] = field(default_factory=list)
    delta: dict[str, Any] = field(default_factory=dict)
    usage: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    @property
    def kinds(self) -> list[str]:
        return [block["type"] for block in self.blocks]

    def text(self, kind: str = "text") -> str:
        return "".join(b.get(kind, "") for b in self.blocks if b["type"] == kind)


def sse_events(raw: str) -> list[tuple[str, dict[str, Any]]]:
    """Every SSE block; each must be one named event whose data names the same type."""
    events = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        lines = block.split("\n")
        assert len(lines) == 2 and lines[0].startswith("event: "), block
        assert lines[1].startswith("data: "), block
        name, data = lines[0][7:], json.loads(lines[1][6:])
        assert data["type"] == name
        events.append((name, data))
    return events


def check_grammar(result: Streamed) -> Streamed:
    """Anthropic's event grammar, event by event (raises AssertionError on the first breach)."""
    state = "before"  # → open (message_start seen) → delta (message_delta) → stopped | failed
    current: dict[str, Any] | None = None
    for name, data in result.events:
        assert state not in ("stopped", "failed"), f"{name} after the end of the stream"
        if name == "ping":
            continue
        if name == "error":
            assert set(data) == {"type", "error"} and set(data["error"]) == {"type", "message"}
            result.error, state = data["error"], "failed"
        elif name == "message_start":
            assert state == "before", "a second message_start"
            result.message, state = data["message"], "open"
        elif name.startswith("content_block"):
            assert state == "open", f"{name} outside an open message"
            current = _block_event(result, current, name, data)
        elif name == "message_delta":
            assert state == "open" and current is None, "message_delta with a block open"
            result.delta, result.usage, state = data["delta"], data["usage"], "delta"
        else:
            assert name == "message_stop" and state == "delta", f"unexpected {name} in {state}"
            state = "stopped"
    assert state in ("stopped", "failed"), "the stream ended without message_stop or error"
    return result


def _block_event(
    result: Streamed, current: dict[str, Any] | None, name: str, data: dict[str, Any]
) -> dict[str, Any] | None:
    if name == "content_block_start":
        assert current is None, "a block started while another is open"
        assert data["index"] == len(result.blocks), "block indexes must be consecutive"
        block = dict(data["content_block"])
        assert block["type"] in DELTA_TYPES
        if block["type"] == "tool_use":
            assert block["input"] == {} and block["id"].startswith("toolu_")
            block["json"] = ""
        result.blocks.append(block)
        return block
    assert current is not None, f"{name} without content_block_start"
    assert data["index"] == len(result.blocks) - 1
    if name == "content_block_stop":
        assert current["type"] != "thinking" or current["signature"], "thinking without signature"
        return None
    delta = data["delta"]
    assert delta["type"] in DELTA_TYPES[current["type"]], f"{delta['type']} in {current['type']}"
    if current["type"] == "thinking":
        assert not current["signature"], "a thinking delta after the signature"
    key = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature"}
    if delta["type"] == "input_json_delta":
        current["json"] += delta["partial_json"]
    else:
        field_name = key[delta["type"]]
        current[field_name] = current.get(field_name, "") + delta[field_name]
    return current


async def stream(
    client: httpx.AsyncClient,
    dialect: Dialect,
    payload: dict[str, Any],
    *,
    path: str = "/v1/messages?beta=true",
    bearer: bool = False,
) -> Streamed:
    body = {**payload, "stream": True}
    async with client.stream("POST", path, json=body, headers=headers(dialect, bearer=bearer)) as r:
        raw = (await r.aread()).decode()
    result = Streamed(r.status_code, raw)
    if r.status_code == 200:
        assert r.headers["content-type"].startswith("text/event-stream")
        result.events = sse_events(raw)
        check_grammar(result)
    return result


async def create(
    client: httpx.AsyncClient, dialect: Dialect, payload: dict[str, Any], bearer: bool = False
) -> httpx.Response:
    body = {**payload, "stream": False}
    return await client.post("/v1/messages", json=body, headers=headers(dialect, bearer=bearer))


# Text


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("bearer", [False, True])
async def test_text_stream_follows_the_grammar(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, bearer: bool
) -> None:
    fake.enqueue(dialect, Script(answer="Hello from Qwen", piece=3))
    result = await stream(client, dialect, ask("say hi"), bearer=bearer)
    assert result.status == 200
    assert result.kinds == ["text"] and result.text() == "Hello from Qwen"
    names = [name for name, _ in result.events]
    assert names[0] == "message_start" and names.count("message_start") == 1
    assert names[-2:] == ["message_delta", "message_stop"]
    message = result.message
    assert message["id"].startswith("msg_") and message["model"] == MODEL
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["content"] == [] and message["stop_reason"] is None
    assert message["stop_sequence"] is None
    assert set(message["usage"]) == USAGE_KEYS
    assert message["usage"]["input_tokens"] > 0 and message["usage"]["output_tokens"] == 0
    assert result.delta == {"stop_reason": "end_turn", "stop_sequence": None}
    assert result.usage["output_tokens"] > 0
    assert "say hi" in prompt_sent(fake, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_non_stream_message(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="Hello from Qwen"))
    response = await create(client, dialect, ask("say hi"), bearer=True)
    assert response.status_code == 200
    data = response.json()
    assert set(data) == {
        "id",
        "type",
        "role",
        "model",
        "content",
        "stop_reason",
        "stop_sequence",
        "usage",
    }
    assert data["id"].startswith("msg_") and data["type"] == "message"
    assert data["model"] == MODEL and data["role"] == "assistant"
    assert data["content"] == [{"type": "text", "text": "Hello from Qwen"}]
    assert data["stop_reason"] == "end_turn" and data["stop_sequence"] is None
    assert set(data["usage"]) == USAGE_KEYS and data["usage"]["output_tokens"] > 0


async def test_an_empty_answer_is_a_message_without_blocks(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="", reasoning=""))
    result = await stream(client, "intl", ask())
    assert result.blocks == [] and result.delta["stop_reason"] == "end_turn"


async def test_every_change_of_kind_opens_a_new_block_and_heartbeats_are_pings() -> None:
    """The renderer alone, on a stream the fake cannot produce: interleaved kinds, heartbeats
    between deltas, two calls in a row, and text after them."""
    calls = [ToolCall("call_1", "a", '{"x": 1}'), ToolCall("toolu_2", "b", "{}")]
    events: list[StreamEvent] = [
        Opened("c1", "qwen"),
        ReasoningDelta("think "),
        Heartbeat(),
        ReasoningDelta("more"),
        TextDelta(""),
        TextDelta("say"),
        ReasoningDelta("again"),
        ToolCalled(calls[0]),
        Heartbeat(),
        ToolCalled(calls[1]),
        TextDelta("after"),
        Finish("tool_calls", Usage(11, 22)),
    ]

    async def source() -> Any:
        for event in events:
            yield event

    meta = Meta("claude-x", 0, True, False, lambda text, reasoning: Usage(7, 0, estimated=True))
    raw = b"".join([encode(frame) async for frame in render_stream(source(), meta)]).decode()
    result = check_grammar(Streamed(200, raw, sse_events(raw)))
    assert result.kinds == ["thinking", "text", "thinking", "tool_use", "tool_use", "text"]
    assert result.blocks[0]["thinking"] == "think more"
    assert [b["id"] for b in result.blocks[3:5]] == ["toolu_1", "toolu_2"]
    assert [b["json"] for b in result.blocks[3:5]] == ['{"x": 1}', "{}"]
    assert [name for name, _ in result.events].count("ping") == 2
    assert result.message["id"] == "msg_c1" and result.message["usage"]["input_tokens"] == 7
    assert result.delta["stop_reason"] == "tool_use"
    assert (result.usage["input_tokens"], result.usage["output_tokens"]) == (11, 22)


# Thinking


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_thinking_blocks_then_text(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 2048}
    fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 17×20 − 17 = 323", piece=4))
    result = await stream(client, dialect, ask("17*19?", thinking=thinking))
    assert result.kinds == ["thinking", "text"]
    assert result.text("thinking") == "17×19 = 17×20 − 17 = 323"
    assert result.blocks[0]["signature"]
    assert result.text() == "323"
    assert thinking_sent(fake, dialect)
    fake.enqueue(dialect, Script(answer="323", reasoning="multiply"))
    data = (await create(client, dialect, ask("17*19?", thinking=thinking))).json()
    assert [b["type"] for b in data["content"]] == ["thinking", "text"]
    assert data["content"][0]["thinking"] == "multiply" and data["content"][0]["signature"]
    assert data["content"][1]["text"] == "323"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize(("kind", "expected"), [("enabled", True), ("disabled", False)])
async def test_thinking_switch_reaches_the_upstream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, kind: str, expected: bool
) -> None:
    thinking: dict[str, Any] = {"type": kind}
    if kind == "enabled":
        thinking["budget_tokens"] = 1024
    await stream(client, dialect, ask(thinking=thinking))
    assert thinking_sent(fake, dialect) is expected
    if dialect == "intl" and expected:
        feature = fake.chat_requests("intl")[-1].json()["messages"][0]["feature_config"]
        assert feature["thinking_budget"] == 1024


async def test_adaptive_thinking_uses_the_model_default(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="ok", reasoning="hmm"))
    result = await stream(client, "intl", ask(thinking={"type": "adaptive"}))
    assert result.status == 200 and result.text() == "ok"


# Requests: system, history, stop sequences, search


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_system_as_string_blocks_and_messages(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197; cc=sdk-cli;"},
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
    ]
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "say hi"}]},
        {"role": "system", "content": "Agents: Explore, Plan."},
    ]
    await stream(client, dialect, {**ask(), "system": system, "messages": messages})
    prompt = prompt_sent(fake, dialect)
    assert "You are terse." in prompt and "Agents: Explore, Plan." in prompt
    assert "say hi" in prompt and "billing-header" not in prompt
    await stream(client, dialect, ask("again", system="Answer in French."))
    assert "Answer in French." in prompt_sent(fake, dialect)


async def test_thinking_history_is_dropped(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    messages = [
        {"role": "user", "content": "first question"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "SECRET-THOUGHT", "signature": "abc"},
                {"type": "redacted_thinking", "data": "xyz"},
                {"type": "text", "text": "first answer"},
            ],
        },
        {"role": "user", "content": "second question"},
    ]
    result = await stream(client, "intl", {**ask(), "messages": messages})
    assert result.status == 200
    prompt = prompt_sent(fake, "intl")
    assert "first answer" in prompt and "second question" in prompt
    assert "SECRET-THOUGHT" not in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stop_sequences(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="one two STOP three", piece=2))
    result = await stream(client, dialect, ask(stop_sequences=["STOP"]))
    assert result.text() == "one two "
    assert result.delta == {"stop_reason": "stop_sequence", "stop_sequence": "STOP"}
    fake.enqueue(dialect, Script(answer="one two STOP three"))
    data = (await create(client, dialect, ask(stop_sequences=["STOP"]))).json()
    assert data["content"] == [{"type": "text", "text": "one two "}]
    assert data["stop_reason"] == "stop_sequence" and data["stop_sequence"] == "STOP"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_web_search_server_tool_turns_on_search(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]
    result = await stream(client, dialect, ask(tools=tools))
    assert result.status == 200
    assert search_sent(fake, dialect)
    assert "web_search" not in prompt_sent(fake, dialect)


# Tools


def tool_history(call: dict[str, Any], result: Any, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me check."}, call]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "thanks, and be brief"},
                {"type": "tool_result", "tool_use_id": call["id"], "content": result, **extra},
            ],
        },
    ]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_tool_use_round_trip_stream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="Let me check.\n" + CALL, piece=4))
    result = await stream(client, dialect, ask("weather in Paris?", tools=[WEATHER]))
    assert result.kinds == ["text", "tool_use"]
    assert result.text() == "Let me check.\n"
    call = result.blocks[1]
    assert call["name"] == "get_weather" and json.loads(call["json"]) == {"city": "Paris"}
    assert result.delta["stop_reason"] == "tool_use"
    assert "get_weather" in prompt_sent(fake, dialect)
    use = {"type": "tool_use", "id": call["id"], "name": call["name"], "input": {"city": "Paris"}}
    history = tool_history(use, "18°C and sunny")
    fake.enqueue(dialect, Script(answer="It is 18°C in Paris."))
    answer = await stream(client, dialect, {**ask(tools=[WEATHER]), "messages": history})
    assert answer.text() == "It is 18°C in Paris." and answer.delta["stop_reason"] == "end_turn"
    prompt = prompt_sent(fake, dialect)
    label = f"[TOOL_RESULT for {call['id']}] 18°C and sunny"
    assert label in prompt
    assert prompt.index(label) < prompt.index("thanks, and be brief")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_tool_use_round_trip_non_stream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=CALL))
    data = (await create(client, dialect, ask("weather in Paris?", tools=[WEATHER]))).json()
    assert data["stop_reason"] == "tool_use"
    [use] = data["content"]
    assert use["type"] == "tool_use" and use["id"].startswith("toolu_")
    assert use["name"] == "get_weather" and use["input"] == {"city": "Paris"}
    failed = [{"type": "text", "text": "city not found"}, {"type": "text", "text": "(Paris?)"}]
    history = tool_history(use, failed, is_error=True, cache_control={"type": "ephemeral"})
    fake.enqueue(dialect, Script(answer="Sorry."))
    answer = await create(client, dialect, {**ask(tools=[WEATHER]), "messages": history})
    assert answer.json()["content"] == [{"type": "text", "text": "Sorry."}]
    prompt = prompt_sent(fake, dialect)
    assert f"[TOOL_RESULT for {use['id']}] (the tool failed) city not found\n(Paris?)" in prompt


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "any"}, "must call at least one tool"),
        ({"type": "tool", "name": "get_weather"}, "must call the tool `get_weather`"),
    ],
)
async def test_tool_choice_reaches_the_prompt(
    client: httpx.AsyncClient, fake: FakeUpstream, choice: dict[str, Any], expected: str
) -> None:
    fake.enqueue("intl", Script(answer=CALL))
    result = await stream(client, "intl", ask(tools=[WEATHER], tool_choice=choice))
    assert result.kinds == ["tool_use"]
    assert expected in prompt_sent(fake, "intl")


async def test_tool_choice_none_leaves_tools_out(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    await stream(client, "cn", ask(tools=[WEATHER], tool_choice={"type": "none"}))
    assert "get_weather" not in prompt_sent(fake, "cn")


# count_tokens and the model list


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_count_tokens(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hello there"}]}
    plain = await client.post(
        "/v1/messages/count_tokens?beta=true", json=payload, headers=headers(dialect)
    )
    assert plain.status_code == 200
    assert set(plain.json()) == {"input_tokens"} and plain.json()["input_tokens"] > 0
    richer = {**payload, "system": "You are terse.", "tools": [WEATHER]}
    counted = await client.post("/v1/messages/count_tokens", json=richer, headers=headers(dialect))
    assert counted.json()["input_tokens"] > plain.json()["input_tokens"] + 10
    result = await stream(client, dialect, {**richer, "max_tokens": 100})
    assert result.message["usage"]["input_tokens"] == counted.json()["input_tokens"]
    assert fake.chat_requests(dialect), "the stream was answered"


async def test_count_tokens_needs_a_key_and_messages(client: httpx.AsyncClient) -> None:
    payload = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    missing = await client.post("/v1/messages/count_tokens", json=payload)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    empty = await client.post(
        "/v1/messages/count_tokens", json={"model": MODEL, "messages": []}, headers=headers("cn")
    )
    assert empty.status_code == 400
    assert empty.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize("bearer", [False, True])
async def test_model_list(client: httpx.AsyncClient, bearer: bool) -> None:
    response = await client.get("/v1/models", headers=headers("intl", bearer=bearer))
    assert response.status_code == 200
    page = response.json()
    assert set(page) == {"data", "has_more", "first_id", "last_id"}
    assert page["has_more"] is False and len(page["data"]) > 2
    for model in page["data"]:
        assert set(model) == {"type", "id", "display_name", "created_at"}
        assert model["type"] == "model" and model["id"] and model["display_name"]
    assert page["first_id"] == page["data"][0]["id"]
    assert page["last_id"] == page["data"][-1]["id"]
    ids = [m["id"] for m in page["data"]]
    first = await client.get("/v1/models?limit=2", headers=headers("intl"))
    assert [m["id"] for m in first.json()["data"]] == ids[:2] and first.json()["has_more"]
    after = ids[1]
    rest = await client.get(f"/v1/models?after_id={after}", headers=headers("intl"))
    assert [m["id"] for m in rest.json()["data"]] == ids[2:]


# Keep-alives


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_pings_fill_the_wait_for_the_first_event(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    base = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue(dialect, Script(answer="late but fine", hold_after=0))
    payload = {**ask(), "stream": True}
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("POST", "/v1/messages", json=payload, headers=headers(dialect)) as response,
    ):
        raw = ""
        pieces = response.aiter_text()
        while "\n\n" not in raw:
            raw += await anext(pieces)
        fake.release()
        async for piece in pieces:
            raw += piece
    result = Streamed(response.status_code, raw, sse_events(raw))  # no ":" comment lines
    check_grammar(result)
    assert result.events[0] == ("ping", {"type": "ping"})
    assert result.text() == "late but fine"


# Errors


def check_envelope(response: httpx.Response, status: int, kind: str) -> str:
    assert response.status_code == status
    data = response.json()
    assert set(data) == {"type", "error"} and data["type"] == "error"
    assert set(data["error"]) == {"type", "message"}
    assert data["error"]["type"] == kind and data["error"]["message"]
    message: str = data["error"]["message"]
    return message


# (dialect, fake error, HTTP status, Anthropic error type)
UPSTREAM_ERRORS = [
    ("intl", "quota", 429, "rate_limit_error"),
    ("intl", "too_many_requests", 429, "rate_limit_error"),
    ("intl", "http_401", 401, "authentication_error"),
    ("intl", "waf", 503, "overloaded_error"),
    ("intl", "http_500", 502, "api_error"),
    ("intl", "http_504_html", 504, "timeout_error"),
    ("intl", "context_length", 400, "invalid_request_error"),
    ("cn", "not_login", 401, "authentication_error"),
    ("cn", "waf_html", 503, "overloaded_error"),
    ("cn", "http_502", 502, "api_error"),
    ("cn", "empty", 502, "api_error"),
]


@pytest.mark.parametrize(("dialect", "name", "status", "kind"), UPSTREAM_ERRORS)
@pytest.mark.parametrize("streamed", [True, False])
async def test_upstream_errors_before_the_first_event(
    client: httpx.AsyncClient,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    status: int,
    kind: str,
    streamed: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    body = {**ask(), "stream": streamed}
    response = await client.post("/v1/messages", json=body, headers=headers(dialect))
    check_envelope(response, status, kind)


# (dialect, fake error, Anthropic error type)
IN_STREAM_ERRORS = [
    ("intl", "quota", "rate_limit_error"),
    ("intl", "waf", "overloaded_error"),
    ("cn", "error_frame", "api_error"),
]


@pytest.mark.parametrize(("dialect", "name", "kind"), IN_STREAM_ERRORS)
async def test_errors_after_the_first_event_are_error_events(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, name: str, kind: str
) -> None:
    fake.enqueue(dialect, Script(answer="partial answer here", error=name, error_after=2))
    result = await stream(client, dialect, ask())
    assert result.status == 200
    assert result.events[-1][0] == "error"  # and check_grammar: nothing after it
    assert result.error is not None and result.error["type"] == kind
    assert result.message and "partial answer here".startswith(result.text())


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_an_answer_cut_short_ends_with_an_error_event(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="cut short here", close_early=True))
    result = await stream(client, dialect, ask())
    assert result.error is not None and result.error["type"] == "api_error"
    assert result.text() == "cut short here"


async def test_request_errors(client: httpx.AsyncClient) -> None:
    path, good = "/v1/messages", headers("cn")
    raw = await client.post(path, content=b"{not json", headers=good)
    check_envelope(raw, 400, "invalid_request_error")
    check_envelope(await client.post(path, json=ask()), 401, "authentication_error")
    no_max = {k: v for k, v in ask().items() if k != "max_tokens"}
    assert "max_tokens" in check_envelope(
        await client.post(path, json=no_max, headers=good), 400, "invalid_request_error"
    )
    role = {**ask(), "messages": [{"role": "robot", "content": "hi"}]}
    check_envelope(await client.post(path, json=role, headers=good), 400, "invalid_request_error")
    array = await client.post(path, json=[ask()], headers=good)
    check_envelope(array, 400, "invalid_request_error")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (
            [
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "!"},
                }
            ],
            "malformed",
        ),
        ([{"type": "image", "source": {"type": "base64", "data": "iVBO"}}], "media_type"),
        ([{"type": "document", "source": {"type": "file", "file_id": "f"}}], "not supported"),
        ([{"type": "image", "source": {"type": "url", "url": "file:///etc/passwd"}}], "file"),
        (
            [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "image"}]}],
            "needs a source",
        ),
    ],
)
async def test_malformed_media_blocks_are_refused(
    client: httpx.AsyncClient, content: list[dict[str, Any]], said: str
) -> None:
    payload = {**ask(), "messages": [{"role": "user", "content": content}]}
    for streamed in (True, False):
        response = await client.post(
            "/v1/messages", json={**payload, "stream": streamed}, headers=headers("intl")
        )
        message = check_envelope(response, 400, "invalid_request_error")
        assert said in message


async def test_other_block_kinds_reach_the_prompt_as_json(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    reference = {"type": "tool_reference", "tool_name": "WebFetch"}
    result = {"type": "tool_result", "tool_use_id": "toolu_9", "content": [reference]}
    payload = {**ask(), "messages": [{"role": "user", "content": [result]}]}
    answered = await stream(client, "cn", payload)
    assert answered.status == 200
    assert '[TOOL_RESULT for toolu_9] {"type":"tool_reference","tool_name":"WebFetch"}' in (
        prompt_sent(fake, "cn")
    )


async def test_too_large_and_pool_keys(make_server: Any) -> None:
    base = make_server(max_body_bytes=2000, tokens=[CREDENTIALS["intl"]], api_keys=["sk-client"])
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        big = ask("x" * 5000)
        pool = {"x-api-key": "sk-client", "anthropic-version": "2023-06-01"}
        response = await client.post("/v1/messages", json=big, headers=pool)
        check_envelope(response, 413, "request_too_large")
        wrong = {**pool, "x-api-key": "sk-wrong"}
        response = await client.post("/v1/messages", json=ask(), headers=wrong)
        check_envelope(response, 401, "authentication_error")
        models = await client.get("/v1/models", headers=wrong)
        check_envelope(models, 401, "authentication_error")


async def test_no_usable_credential_is_overloaded(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/messages", json=ask(), headers={"x-api-key": ",", "anthropic-version": "x"}
    )
    check_envelope(response, 503, "overloaded_error")


# A request shaped like Claude Code's (clients.md §2)


def claude_code_tools() -> list[dict[str, Any]]:
    names = [
        "Agent", "Bash", "CronCreate", "CronDelete", "CronList", "Edit", "EnterWorktree",
        "ExitWorktree", "NotebookEdit", "Read", "ReportFindings", "ScheduleWakeup",
        "SendMessage", "Skill", "TaskCreate", "TaskGet", "TaskList", "TaskOutput", "TaskStop",
        "TaskUpdate", "WebFetch", "WebSearch", "Workflow", "Write",
    ]  # fmt: skip
    tools = []
    for number, name in enumerate(names):
        properties = {
            f"option_{i}": {
                "type": "string",
                "description": f"Option {i} of {name}: " + "explains the option at length. " * 8,
            }
            for i in range(8)
        }
        schema = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": properties,
            "required": ["option_0"],
            "additionalProperties": False,
        }
        description = f"Tool {name} (#{number}). " + "Use it carefully and read the rules. " * 25
        tools.append({"name": name, "description": description, "input_schema": schema})
    tools[-1]["cache_control"] = {"type": "ephemeral"}
    return tools


def claude_code_request() -> dict[str, Any]:
    reminder = (
        "<system-reminder>\n" + "Remember the project conventions. " * 9 + "\n</system-reminder>"
    )
    user_id = json.dumps({"device_id": "d" * 64, "account_uuid": "", "session_id": "s-1"})
    return {
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "stream": True,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "high"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "metadata": {"user_id": user_id},
        "temperature": 1,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197.abc;"},
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {
                "type": "text",
                "text": "You are an interactive agent. " * 180,
                "cache_control": {"type": "ephemeral"},
            },
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": reminder},
                    {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}},
                ],
            },
            {"role": "system", "content": "Available agents: " + "Explore, Plan, " * 370},
        ],
        "tools": claude_code_tools(),
    }


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_claude_code_request_is_answered_with_a_text_stream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    payload = claude_code_request()
    assert len(json.dumps(payload)) > 70_000
    fake.enqueue(dialect, Script(answer="hi", reasoning=""))
    extra = {"x-app": "cli", "anthropic-dangerous-direct-browser-access": "true"}
    async with client.stream(
        "POST", "/v1/messages?beta=true", json=payload, headers={**headers(dialect), **extra}
    ) as response:
        raw = (await response.aread()).decode()
    assert response.status_code == 200, raw
    result = check_grammar(Streamed(200, raw, sse_events(raw)))
    assert result.text() == "hi" and result.delta["stop_reason"] == "end_turn"
    assert result.message["model"] == "claude-opus-4-8"
    prompt = prompt_sent(fake, dialect)
    assert "say hi" in prompt and "Available agents" in prompt and "TaskUpdate" in prompt
