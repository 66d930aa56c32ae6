"""The OpenAI Responses dialect over real HTTP and through the official openai SDK: the typed
event grammar with sequence numbers, reasoning items, function calls (also namespaced) and
their round trip, a Codex-shaped request, web search, continuation by previous_response_id,
and errors before and during the stream."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest

from qwen_free_api.chat import ToolCall
from qwen_free_api.credentials import Dialect
from qwen_free_api.dialects import Meta
from qwen_free_api.dialects.responses_render import Turn, render_stream, render_stream_error
from qwen_free_api.dialects.responses_wire import (
    ResponsesRequest,
    ToolNames,
    parse_request,
    to_chat,
)
from qwen_free_api.errors import BadRequest, ContextTooLong, RateLimited
from qwen_free_api.events import (
    Citation,
    Citations,
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
MODEL = "gpt-5-codex"


def call_block(name: str, arguments: str) -> str:
    """A tool call in the model's protocol, as the gateway's parser reads it."""
    return f"[function_calls]\n[call:{name}]{arguments}[/call]\n[/function_calls]"


CALL = call_block("get_weather", '{"city": "Paris"}')
SPAWN_CALL = call_block("multi_agent_v1__spawn_agent", '{"message": "go"}')
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather of a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}
SPAWN = {
    "type": "function",
    "name": "spawn_agent",
    "description": "Start a helper agent",
    "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
}
AGENTS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Helper agents",
    "tools": [SPAWN],
}
TEXT_ITEM = [
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
]
SUMMARY_ITEM = [
    "response.output_item.added",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
]
CALL_ITEM = [
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
]
OPENING = ["response.created", "response.in_progress"]


def headers(dialect: Dialect) -> dict[str, str]:
    return {"authorization": f"Bearer {CREDENTIALS[dialect]}"}


def ask(prompt: Any = "say hi", **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "input": prompt, **extra}


def prompt_sent(fake: FakeUpstream, dialect: Dialect, index: int = -1) -> str:
    content: str = fake.chat_requests(dialect)[index].json()["messages"][0]["content"]
    return content


@dataclass
class Streamed:
    status: int
    raw: str
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def squeezed(self) -> list[str]:
        """Event types with runs of the same delta type collapsed to one."""
        out: list[str] = []
        for kind in self.types:
            if not (out and out[-1] == kind and kind.endswith(".delta")):
                out.append(kind)
        return out

    @property
    def last(self) -> dict[str, Any]:
        return self.events[-1]

    @property
    def text(self) -> str:
        return "".join(e["delta"] for e in self.events if e["type"] == "response.output_text.delta")


def parse_events(raw: str) -> list[dict[str, Any]]:
    """Every SSE event; the `event:` name must equal the data's `type`."""
    events: list[dict[str, Any]] = []
    for block in raw.split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        assert lines[0].startswith("event: ") and lines[1].startswith("data: "), block
        data = json.loads(lines[1][6:])
        assert data["type"] == lines[0][7:]
        events.append(data)
    return events


async def stream(client: httpx.AsyncClient, dialect: Dialect, body: dict[str, Any]) -> Streamed:
    payload = {**body, "stream": True}
    async with client.stream("POST", "/v1/responses", json=payload, headers=headers(dialect)) as r:
        raw = (await r.aread()).decode()
    result = Streamed(r.status_code, raw)
    if r.status_code == 200:
        assert r.headers["content-type"].startswith("text/event-stream")
        result.events = parse_events(raw)
        check_grammar(result.events)
    return result


async def create(client: httpx.AsyncClient, dialect: Dialect, body: dict[str, Any]) -> Any:
    response = await client.post("/v1/responses", json=body, headers=headers(dialect))
    assert response.status_code == 200, response.text
    return response.json()


def check_grammar(events: list[dict[str, Any]]) -> None:
    """Sequence numbers 0, 1, 2…; created and in_progress first; one terminal event, last;
    each output item added, then its parts and deltas, then done, one item at a time; the
    final response lists exactly the finished items."""
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [e["type"] for e in events[:2]] == OPENING
    response_id = events[0]["response"]["id"]
    assert response_id.startswith("resp_")
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    terminal = [
        i
        for i, e in enumerate(events)
        if e["type"] in ("response.completed", "response.incomplete", "response.failed")
    ]
    assert terminal == [len(events) - 1]
    finished: list[dict[str, Any]] = []
    open_item: dict[str, Any] | None = None
    for event in events[2:]:
        kind = event["type"]
        if kind == "response.output_item.added":
            assert open_item is None and event["output_index"] == len(finished)
            open_item = event["item"]
            assert open_item["status"] == "in_progress"
        elif kind == "response.output_item.done":
            assert open_item is not None and event["output_index"] == len(finished)
            assert event["item"]["id"] == open_item["id"]
            assert event["item"]["type"] == open_item["type"]
            assert event["item"].get("call_id") == open_item.get("call_id")
            finished.append(event["item"])
            open_item = None
        elif "response" in event:
            assert event["response"]["id"] == response_id
            assert open_item is None or kind == "response.failed"
            if kind == "response.completed":
                assert event["response"]["output"] == finished
        else:
            assert open_item is not None, kind
            assert event["item_id"] == open_item["id"]
            assert event["output_index"] == len(finished)
            assert event.get("content_index", 0) == 0 and event.get("summary_index", 0) == 0


# ---------------------------------------------------------------------------------------------
# Text, instructions, reasoning


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_text_stream_follows_the_grammar(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="Hello from Qwen", usage_numbers=(5, 7)))
    result = await stream(client, dialect, ask())
    assert result.squeezed() == [*OPENING, *TEXT_ITEM, "response.completed"]
    assert result.text == "Hello from Qwen"
    done = result.last["response"]
    assert done["status"] == "completed" and done["model"] == MODEL
    assert done["object"] == "response" and done["incomplete_details"] is None
    message = done["output"][0]
    assert message["role"] == "assistant" and message["id"].startswith("msg_")
    assert message["content"][0] == {
        "type": "output_text",
        "text": "Hello from Qwen",
        "annotations": [],
        "logprobs": [],
    }
    assert done["usage"]["input_tokens"] == 5 and done["usage"]["output_tokens"] == 7
    assert done["usage"]["total_tokens"] == 12
    assert done["usage"]["input_tokens_details"] == {"cached_tokens": 0}
    assert prompt_sent(fake, dialect) == "say hi"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_string_input_whole_response(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    data = await create(client, dialect, ask("what is 2+2?"))
    assert data["id"].startswith("resp_") and data["status"] == "completed"
    assert [item["type"] for item in data["output"]] == ["message"]
    assert data["output"][0]["content"][0]["text"] == "Echo: what is 2+2?"
    assert data["usage"]["total_tokens"] > 0
    assert data["tools"] == [] and data["tool_choice"] == "auto"
    assert data["parallel_tool_calls"] is True
    assert prompt_sent(fake, dialect) == "what is 2+2?"


async def test_the_route_without_v1(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    response = await client.post("/responses", json=ask(), headers=headers("cn"))
    assert response.json()["output"][0]["content"][0]["text"] == "Echo: say hi"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_instructions_and_developer_messages_reach_the_prompt(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    items = [
        {"role": "developer", "content": [{"type": "input_text", "text": "Answer in French."}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Bonjour"}]},
        {"role": "user", "content": "how are you?"},
    ]
    data = await create(client, dialect, ask(items, instructions="You are terse."))
    assert data["instructions"] == "You are terse."
    prompt = prompt_sent(fake, dialect)
    for text in ("You are terse.", "Answer in French.", "Bonjour", "how are you?"):
        assert text in prompt
    assert prompt.index("You are terse.") < prompt.index("Answer in French.") < prompt.index("hi")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reasoning_summary_is_a_reasoning_item(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 323"))
    body = ask("17*19?", reasoning={"effort": "high", "summary": "auto"})
    result = await stream(client, dialect, body)
    assert result.squeezed() == [*OPENING, *SUMMARY_ITEM, *TEXT_ITEM, "response.completed"]
    deltas = [e["delta"] for e in result.events if e["type"].endswith("summary_text.delta")]
    assert "".join(deltas) == "17×19 = 323"
    reasoning, message = result.last["response"]["output"]
    assert reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "17×19 = 323"}]
    assert message["content"][0]["text"] == "323"
    assert result.last["response"]["reasoning"] == {"effort": "high", "summary": "auto"}
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["feature_config"]["thinking_enabled"] is True
    else:
        assert sent["deep_search"] == "1"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_reasoning_without_summary_is_reasoning_text(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="ok", reasoning="thinking it over"))
    result = await stream(client, dialect, ask(reasoning={"effort": "medium"}))
    assert result.squeezed()[2:6] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.reasoning_text.delta",
        "response.reasoning_text.done",
    ]
    fake.enqueue(dialect, Script(answer="ok", reasoning="thinking it over"))
    data = await create(client, dialect, ask(reasoning={"effort": "medium"}))
    reasoning = data["output"][0]
    assert reasoning["type"] == "reasoning" and reasoning["summary"] == []
    assert reasoning["content"] == [{"type": "reasoning_text", "text": "thinking it over"}]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_minimal_effort_turns_thinking_off(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    switches = []
    for effort in ("minimal", "low", "none"):
        await create(client, dialect, ask(reasoning={"effort": effort}))
        sent = fake.chat_requests(dialect)[-1].json()
        if dialect == "intl":
            switches.append(sent["messages"][0]["feature_config"]["thinking_enabled"])
        else:
            switches.append(sent["deep_search"] == "1")
    assert switches == [False, True, False]


# ---------------------------------------------------------------------------------------------
# Function calls


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_function_call_stream_and_round_trip(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=CALL))
    result = await stream(client, dialect, ask("weather in Paris?", tools=[WEATHER]))
    assert result.squeezed() == [*OPENING, *CALL_ITEM, "response.completed"]
    added = result.events[2]["item"]
    assert added["arguments"] == "" and added["name"] == "get_weather"
    assert result.events[3]["delta"] == '{"city": "Paris"}'
    call = result.last["response"]["output"][0]
    assert call["type"] == "function_call" and call["status"] == "completed"
    assert call["id"].startswith("fc_") and call["call_id"].startswith("call_")
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    assert "namespace" not in call
    assert "get_weather" in prompt_sent(fake, dialect)
    history = [
        {"role": "user", "content": "weather in Paris?"},
        {key: call[key] for key in ("type", "call_id", "name", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21 °C"},
    ]
    fake.enqueue(dialect, Script(answer="It is sunny."))
    data = await create(client, dialect, ask(history, tools=[WEATHER]))
    assert data["output"][0]["content"][0]["text"] == "It is sunny."
    prompt = prompt_sent(fake, dialect)
    assert f"[TOOL_RESULT for {call['call_id']}]" in prompt and "sunny, 21 °C" in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_function_call_whole_response(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=CALL))
    data = await create(client, dialect, ask("weather?", tools=[WEATHER], tool_choice="required"))
    assert [item["type"] for item in data["output"]] == ["function_call"]
    call = data["output"][0]
    assert call["name"] == "get_weather" and json.loads(call["arguments"]) == {"city": "Paris"}
    assert data["tool_choice"] == "required" and data["tools"] == [WEATHER]


async def test_tool_output_as_parts_and_calls_merged(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    history = [
        {"role": "user", "content": "two cities"},
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": None},
        {
            "type": "function_call",
            "call_id": "call_a",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
        {
            "type": "function_call",
            "call_id": "call_b",
            "name": "get_weather",
            "arguments": '{"city": "Rome"}',
        },
        {
            "type": "function_call_output",
            "call_id": "call_a",
            "output": [{"type": "input_text", "text": "snow"}],
        },
        {"type": "function_call_output", "call_id": "call_b", "output": "sun"},
    ]
    await create(client, "intl", ask(history, tools=[WEATHER]))
    prompt = prompt_sent(fake, "intl")
    assert "Tool: [TOOL_RESULT for call_a] snow\n\nTool: [TOOL_RESULT for call_b] sun" in prompt
    assert prompt.count("Assistant:") == 1  # both calls in one assistant turn
    assert prompt.index("Oslo") < prompt.index("Rome") < prompt.index("snow")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_namespaced_call_comes_back_with_its_namespace(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=SPAWN_CALL))
    result = await stream(client, dialect, ask("delegate", tools=[WEATHER, AGENTS]))
    call = result.last["response"]["output"][0]
    assert (call["namespace"], call["name"]) == ("multi_agent_v1", "spawn_agent")
    assert result.events[2]["item"]["namespace"] == "multi_agent_v1"
    prompt = prompt_sent(fake, dialect)
    assert "multi_agent_v1__spawn_agent" in prompt and "Helper agents" in prompt
    history = [
        {"role": "user", "content": "delegate"},
        {key: call[key] for key in ("type", "call_id", "name", "namespace", "arguments")},
        {"type": "function_call_output", "call_id": call["call_id"], "output": "agent 7"},
    ]
    await create(client, dialect, ask(history, tools=[WEATHER, AGENTS]))
    # The history resent with `{namespace, name}` matches the answer on record under its flat
    # name, so the upstream conversation goes on with just the tool result.
    one, two = (r.json() for r in fake.chat_requests(dialect)[-2:])
    key = "session_id" if dialect == "cn" else "chat_id"
    assert one[key] == two[key]
    prompt = prompt_sent(fake, dialect)
    assert prompt.startswith(f"Tool: [TOOL_RESULT for {call['call_id']}] agent 7")


async def test_a_bare_name_gets_its_namespace_back(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    mcp = {"type": "namespace", "name": "mcp__burp__", "tools": [{**SPAWN, "name": "status"}]}
    answer = "[function_calls]\n[call:status]{}[/call]\n[/function_calls]"
    fake.enqueue("cn", Script(answer=answer))
    data = await create(client, "cn", ask("status?", tools=[AGENTS, mcp]))
    call = data["output"][0]
    assert (call["namespace"], call["name"]) == ("mcp__burp__", "status")
    assert "mcp__burp__status" in prompt_sent(fake, "cn")


# ---------------------------------------------------------------------------------------------
# Codex, web search, continuation


def codex_request() -> dict[str, Any]:
    """The shape Codex 0.171 sends (see clients.md §4)."""
    names = [
        "exec_command",
        "write_stdin",
        "request_user_input",
        "view_image",
        "get_goal",
        "create_goal",
        "update_goal",
    ]
    functions = [
        {
            "type": "function",
            "name": name,
            "description": f"The {name} tool. " + "Details. " * 40,
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"cmd": {"type": "string", "description": "what to run"}},
                "required": ["cmd"],
                "additionalProperties": False,
            },
        }
        for name in names
    ]
    agents = {
        "type": "namespace",
        "name": "multi_agent_v1",
        "description": "Spawn and talk to sub-agents.",
        "tools": [
            {**SPAWN, "strict": False},
            {**SPAWN, "name": "wait", "description": "Wait for agents"},
        ],
    }
    developer = "You are Codex, a coding agent. " + "Follow the rules. " * 940
    return {
        "model": MODEL,
        "input": [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": developer}],
            },
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": "<permissions>sandboxed</permissions>"}],
            },
            {
                "type": "message",
                "role": "user",
                "content": [
                    {
                        "type": "input_text",
                        "text": "<environment_context>cwd=/work</environment_context>",
                    }
                ],
            },
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "say hi"}],
            },
        ],
        "tools": [*functions, agents, {"type": "web_search", "external_web_access": False}],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"summary": "auto"},
        "store": False,
        "stream": True,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "0199-thread",
        "client_metadata": {"originator": "codex_exec"},
    }


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_codex_request_is_answered(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    body = codex_request()
    assert len(body["input"][0]["content"][0]["text"]) > 16_000
    fake.enqueue(dialect, Script(answer="hi", reasoning="greet the user"))
    result = await stream(client, dialect, body)
    assert result.status == 200
    assert result.squeezed() == [*OPENING, *SUMMARY_ITEM, *TEXT_ITEM, "response.completed"]
    done = result.last["response"]
    assert done["store"] is False and done["parallel_tool_calls"] is False
    assert done["output"][1]["content"][0]["text"] == "hi"
    prompt = prompt_sent(fake, dialect)
    for text in ("You are Codex", "<permissions>", "cwd=/work", "say hi", "exec_command"):
        assert text in prompt
    assert "multi_agent_v1__wait" in prompt
    sent = fake.chat_requests(dialect)[-1].json()
    # Codex's web_search tool says `external_web_access: false`: no upstream search.
    if dialect == "intl":
        assert sent["messages"][0]["chat_type"] != "search"
    else:
        assert not sent.get("enable_search")


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("tool", ["web_search", "web_search_preview"])
async def test_web_search_tool_turns_on_search(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, tool: str
) -> None:
    await create(client, dialect, ask(tools=[{"type": tool}, {"type": "file_search"}]))
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["chat_type"] == "search"
    else:
        assert sent["enable_search"] is True
    await create(client, dialect, ask(tools=[WEATHER]))
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["chat_type"] != "search"
    else:
        assert not sent.get("enable_search")


async def test_search_citations_become_annotations(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sources = [{"title": "Qwen", "url": "https://qwen.example/a", "hostname": "q", "snippet": "s"}]
    fake.enqueue("intl", Script(answer="See [[1]].", search_results=sources))
    result = await stream(client, "intl", ask(tools=[{"type": "web_search"}]))
    part = result.last["response"]["output"][0]["content"][0]
    assert [a["url"] for a in part["annotations"]] == ["https://qwen.example/a"]
    assert part["annotations"][0]["type"] == "url_citation"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_previous_response_id_continues_the_conversation(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    url = make_server(delete_sessions=False)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        first = await create(client, dialect, ask("my name is Ada"))
        result = await stream(client, dialect, ask("my name?", previous_response_id=first["id"]))
        unknown = await client.post(
            "/v1/responses",
            json=ask("x", previous_response_id="resp_cn." + "ab" * 48),
            headers=headers(dialect),
        )
    assert "(turn 2)" in result.text
    assert result.last["response"]["previous_response_id"] == first["id"]
    assert prompt_sent(fake, dialect) == "my name?"
    one, two = (r.json() for r in fake.chat_requests(dialect)[-2:])
    key = "session_id" if dialect == "cn" else "chat_id"
    assert one[key] == two[key]
    assert unknown.status_code == 400
    assert unknown.json()["error"]["param"] == "previous_response_id"


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("dialect", "name", "status", "kind"),
    [
        ("intl", "quota", 429, "insufficient_quota"),
        ("intl", "too_many_requests", 429, "rate_limit_error"),
        ("intl", "http_401", 401, "authentication_error"),
        ("intl", "context_length", 400, "invalid_request_error"),
        ("cn", "not_login", 401, "authentication_error"),
        ("cn", "waf_html", 503, "service_unavailable"),
    ],
)
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
    body = ask(stream=streamed)
    response = await client.post("/v1/responses", json=body, headers=headers(dialect))
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind and error["message"]
    assert set(error) == {"message", "type", "code", "param"}


@pytest.mark.parametrize(
    ("dialect", "name", "code"),
    [
        ("intl", "quota", "insufficient_quota"),
        ("intl", "waf", "blocked"),
        ("cn", "error_frame", None),
    ],
)
async def test_errors_mid_stream_end_with_response_failed(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, name: str, code: str | None
) -> None:
    fake.enqueue(dialect, Script(answer="partial answer here", error=name, error_after=2))
    result = await stream(client, dialect, ask())
    assert result.status == 200
    assert result.last["type"] == "response.failed"
    failed = result.last["response"]
    assert failed["status"] == "failed" and failed["error"]["message"]
    if code is not None:
        assert failed["error"]["code"] == code
    assert "partial answer here".startswith(result.text) and result.text
    assert "response.completed" not in result.types


async def test_rate_limits_mid_stream_tell_codex_when_to_retry(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="partial answer", error="too_many_requests", error_after=2))
    result = await stream(client, "intl", ask())
    error = result.last["response"]["error"]
    assert error["code"] == "rate_limit_exceeded"


async def test_request_errors(client: httpx.AsyncClient) -> None:
    good = headers("cn")

    async def refused(body: Any, status: int = 400, **kw: Any) -> dict[str, Any]:
        response = await client.post("/v1/responses", json=body, headers=kw.get("h", good))
        assert response.status_code == status, response.text
        error: dict[str, Any] = response.json()["error"]
        return error

    assert (await refused(ask(), 401, h={}))["type"] == "authentication_error"
    raw = await client.post("/v1/responses", content=b"{nope", headers=good)
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert (await refused({"input": "hi"}))["param"] == "model"
    assert (await refused(ask(42)))["param"] == "input"
    assert (await refused(ask([])))["param"] == "input"
    assert (await refused(ask([{"role": "robot", "content": "hi"}])))["param"] == "input.0.role"
    image = [{"type": "input_image", "image_url": "file:///etc/passwd"}]
    cases = [
        (image, "only http, https and data:"),
        ([{"type": "input_file", "file_id": "f"}], "file ids"),
    ]
    for content, said in cases:
        for streamed in (True, False):
            items = [{"role": "user", "content": [{"type": "input_text", "text": "x"}, *content]}]
            error = await refused(ask(items, stream=streamed))
            assert said in error["message"]
            assert error["param"] == "input.0.content.1"
    call = [{"type": "function_call", "name": "f", "arguments": "{}"}]
    assert (await refused(ask(call)))["param"] == "input.0.call_id"
    assert (await refused(ask(tools=[{"type": "function"}])))["param"] == "tools.0"


# ---------------------------------------------------------------------------------------------
# Translation and rendering without the network


def translate(**body: Any) -> Any:
    return to_chat(parse_request({"model": MODEL, "input": "x", **body}))


def test_request_translation() -> None:
    plain = translate()
    assert plain.chat.thinking is None and not plain.summary and not plain.chat.search
    assert plain.chat.tool_choice.mode == "auto" and plain.chat.json_schema is None
    assert translate(reasoning={"effort": "none"}).chat.thinking is False
    assert translate(reasoning={"effort": "xhigh", "summary": "detailed"}).summary
    assert translate(reasoning={"generate_summary": "concise"}).summary
    assert not translate(reasoning={"summary": "none"}).summary
    assert translate(tool_choice="none").chat.tool_choice.mode == "none"
    named = translate(tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"})
    assert (named.chat.tool_choice.mode, named.chat.tool_choice.name) == ("required", "get_weather")
    spaced = {"type": "function", "name": "spawn_agent", "namespace": "multi_agent_v1"}
    assert translate(tools=[AGENTS], tool_choice=spaced).chat.tool_choice.name == (
        "multi_agent_v1__spawn_agent"
    )
    allowed = {"type": "allowed_tools", "mode": "required", "tools": []}
    assert translate(tool_choice=allowed).chat.tool_choice.mode == "required"
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    fmt = {"format": {"type": "json_schema", "name": "out", "schema": schema, "strict": True}}
    assert translate(text=fmt).chat.json_schema == schema
    assert translate(text={"format": {"type": "json_object"}}).chat.json_schema == {}
    assert translate(text={"format": {"type": "text"}, "verbosity": "low"}).chat.json_schema is None
    assert translate(previous_response_id="resp_cn.abc").chat.conversation_id == "cn.abc"
    others = translate(tools=[{"type": "code_interpreter"}, {"type": "custom", "name": "x"}])
    assert others.chat.tools == () and not others.chat.search


def test_assistant_text_and_its_calls_are_one_turn() -> None:
    items = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "Running it."}]},
        {
            "type": "function_call",
            "call_id": "c1",
            "name": "spawn_agent",
            "namespace": "multi_agent_v1",
            "arguments": "{}",
        },
        {"type": "function_call_output", "call_id": "c1", "output": "ok"},
        {"type": "something_new", "payload": 1},
    ]
    messages = to_chat(ResponsesRequest(model=MODEL, input=items)).chat.messages
    assert [m.role for m in messages] == ["user", "assistant", "tool"]
    assert messages[1].text == "Running it."
    assert messages[1].tool_calls == (ToolCall("c1", "multi_agent_v1__spawn_agent", "{}"),)
    assert messages[2].tool_call_id == "c1" and messages[2].name == "multi_agent_v1__spawn_agent"


def test_tool_names_split() -> None:
    names = ToolNames(
        {"ns__a": ("ns", "a"), "ns2__a": ("ns2", "a"), "ns__b": ("ns", "b")}, frozenset({"c"})
    )
    assert names.split("ns__a") == ("ns", "a")
    assert names.split("b") == ("ns", "b")  # unique bare name
    assert names.split("a") == (None, "a")  # ambiguous
    assert names.split("c") == (None, "c")


def test_bad_requests_name_the_field() -> None:
    with pytest.raises(BadRequest) as caught:
        parse_request({"model": "", "input": "x"})
    assert caught.value.param == "model"


async def _events(*items: StreamEvent) -> AsyncIterator[StreamEvent]:
    for item in items:
        yield item


def _meta() -> Meta:
    return Meta(
        MODEL,
        1,
        True,
        False,
        lambda text, reasoning: Usage(3, len(text + reasoning), estimated=True),
    )


async def test_every_change_of_kind_opens_a_new_item_and_length_is_incomplete() -> None:
    turn = Turn(ResponsesRequest(model=MODEL, input="x"), ToolNames(), summary=True)
    events = _events(
        Opened("cn.abc", "qwen"),
        Citations((Citation("https://a.example", "A"),)),
        ReasoningDelta("think"),
        TextDelta("one"),
        TextDelta(""),
        Heartbeat(),
        TextDelta(" two"),
        ToolCalled(ToolCall("call_1", "get_weather", '{"city": "Oslo"}')),
        ReasoningDelta("more"),
        TextDelta("three"),
        Finish("length"),
    )
    raw = "".join([encode(f).decode() async for f in render_stream(events, _meta(), turn)])
    assert ": keep-alive" in raw
    parsed = parse_events(raw)
    check_grammar(parsed)
    added = [e["item"]["type"] for e in parsed if e["type"] == "response.output_item.added"]
    assert added == ["reasoning", "message", "function_call", "reasoning", "message"]
    assert parsed[-1]["type"] == "response.incomplete"
    done = parsed[-1]["response"]
    assert done["id"] == "resp_cn.abc" and done["status"] == "incomplete"
    assert done["incomplete_details"] == {"reason": "max_output_tokens"}
    assert done["output"][1]["content"][0]["text"] == "one two"
    assert done["output"][1]["content"][0]["annotations"][0]["url"] == "https://a.example"
    assert done["usage"]["estimated"] is True
    assert done["usage"]["output_tokens_details"]["reasoning_tokens"] == len("thinkmore")


def test_stream_errors_before_and_after_the_start() -> None:
    """Before response.created (respond() also renders its shutdown terminator up front) an
    `error` event that leaves the counter alone; after it, `response.failed` of that response."""
    turn = Turn(ResponsesRequest(model=MODEL, input="x"), ToolNames(), summary=False)
    limited = RateLimited("slow down", retry_after=7)
    early = parse_events(encode(render_stream_error(limited, _meta(), turn)[0]).decode())
    assert early[0]["type"] == "error"
    assert early[0]["sequence_number"] == 0 and turn.sequence == 0
    assert early[0]["code"] == "rate_limit_exceeded"
    assert early[0]["message"] == "slow down Please try again in 7s."
    turn.response_id, turn.sequence = "resp_x", 5
    late = parse_events(
        encode(render_stream_error(ContextTooLong("too long"), _meta(), turn)[0]).decode()
    )
    assert late[0]["type"] == "response.failed" and late[0]["sequence_number"] == 5
    assert late[0]["response"]["id"] == "resp_x" and late[0]["response"]["status"] == "failed"
    assert late[0]["response"]["error"] == {
        "code": "context_length_exceeded",
        "message": "too long",
        "param": None,
    }


# ---------------------------------------------------------------------------------------------
# The official openai SDK


@pytest.fixture
async def sdk(server: str) -> AsyncIterator[Any]:
    clients: list[openai.AsyncOpenAI] = []

    async def make(dialect: Dialect) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(
            base_url=server + "/v1", api_key=CREDENTIALS[dialect], max_retries=0, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_create(sdk: Any, fake: FakeUpstream, dialect: Dialect) -> None:
    client = await sdk(dialect)
    response = await client.responses.create(model=MODEL, input="say hi")
    assert response.output_text == "Echo: say hi"
    assert response.status == "completed" and response.model == MODEL
    assert response.usage is not None and response.usage.total_tokens > 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_stream_events(sdk: Any, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(dialect, Script(answer="streamed answer", reasoning="hmm"))
    client = await sdk(dialect)
    events = await client.responses.create(
        model=MODEL, input="hi", stream=True, reasoning={"effort": "high", "summary": "auto"}
    )
    seen, text = [], []
    async for event in events:
        seen.append(event.type)
        if event.type == "response.output_text.delta":
            text.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert "".join(text) == "streamed answer"
    assert seen[0] == "response.created" and seen[-1] == "response.completed"
    assert "response.reasoning_summary_text.delta" in seen
    assert final.output_text == "streamed answer"
    assert final.output[0].type == "reasoning" and final.output[0].summary[0].text == "hmm"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_stream_helper_final_response(
    sdk: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="final words"))
    client = await sdk(dialect)
    async with client.responses.stream(model=MODEL, input="hi", instructions="be brief") as s:
        deltas = [event.delta async for event in s if event.type == "response.output_text.delta"]
        final = await s.get_final_response()
    assert "".join(deltas) == "final words"
    assert final.output_text == "final words" and final.instructions == "be brief"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_function_tool_round_trip(sdk: Any, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(dialect, Script(answer=CALL))
    client = await sdk(dialect)
    async with client.responses.stream(model=MODEL, input="weather?", tools=[WEATHER]) as s:
        final = await s.get_final_response()
    call = final.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.parsed_arguments == {"city": "Paris"}  # strict tool: the SDK parsed it
    fake.enqueue(dialect, Script(answer="Sunny in Paris."))
    answer = await client.responses.create(
        model=MODEL,
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert answer.output_text == "Sunny in Paris."
    assert f"[TOOL_RESULT for {call.call_id}]" in prompt_sent(fake, dialect)


async def test_sdk_namespaced_call(sdk: Any, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer=SPAWN_CALL))
    client = await sdk("intl")
    response = await client.responses.create(model=MODEL, input="delegate", tools=[AGENTS])
    call = response.output[0]
    assert (call.namespace, call.name) == ("multi_agent_v1", "spawn_agent")


@pytest.mark.parametrize(
    ("dialect", "name", "exception"),
    [
        ("intl", "quota", openai.RateLimitError),
        ("intl", "http_401", openai.AuthenticationError),
        ("cn", "waf_html", openai.InternalServerError),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_sdk_error_classes(
    sdk: Any,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    exception: type[openai.APIStatusError],
    streamed: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    client = await sdk(dialect)
    with pytest.raises(exception):
        result = await client.responses.create(model=MODEL, input="hi", stream=streamed)
        if streamed:
            async for _ in result:
                pass


async def test_sdk_bad_input_and_mid_stream_failure(sdk: Any, fake: FakeUpstream) -> None:
    client = await sdk("intl")
    with pytest.raises(openai.BadRequestError):
        await client.responses.create(
            model=MODEL,
            input=[{"role": "user", "content": [{"type": "input_image", "image_url": "data:,"}]}],
        )
    fake.enqueue("intl", Script(answer="some text first", error="quota", error_after=2))
    events = await client.responses.create(model=MODEL, input="hi", stream=True)
    last = None
    async for event in events:
        last = event
    assert last is not None and last.type == "response.failed"
    assert last.response.error is not None and last.response.error.code == "insufficient_quota"
