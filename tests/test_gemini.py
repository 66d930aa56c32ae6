"""The Gemini dialect over real HTTP: generateContent, both stream framings, countTokens, model
lists, camelCase and snake_case bodies, thoughts, function calls, JSON mode and Google's errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

DIALECTS = ["cn", "intl"]
MODEL = "qwen3.7-plus"
TOOL_ANSWER = '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n[/function_calls]'
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "OBJECT",
        "properties": {"city": {"type": "STRING", "description": "City name"}},
        "required": ["city"],
    },
}


def url(method: str, model: str = MODEL, version: str = "v1beta", query: str = "") -> str:
    return f"/{version}/models/{model}:{method}" + (f"?{query}" if query else "")


def key(dialect: Dialect) -> dict[str, str]:
    return {"x-goog-api-key": CREDENTIALS[dialect]}


def user(text: str, **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def sse_chunks(raw: str) -> list[dict[str, Any]]:
    """Every SSE block of a Gemini stream, each of which must be one `data:` JSON frame."""
    chunks = []
    for block in raw.split("\n\n"):
        if not block:
            continue
        assert block.startswith("data: ") and "\n" not in block, block
        chunks.append(json.loads(block[6:]))
    return chunks


def parts_of(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for c in chunks if "candidates" in c for p in c["candidates"][0]["content"]["parts"]]


def text_of(chunks: list[dict[str, Any]], thought: bool = False) -> str:
    return "".join(p.get("text", "") for p in parts_of(chunks) if bool(p.get("thought")) == thought)


def finishes(chunks: list[dict[str, Any]]) -> list[str]:
    return [
        c["candidates"][0]["finishReason"]
        for c in chunks
        if "candidates" in c and "finishReason" in c["candidates"][0]
    ]


def upstream_prompt(fake: FakeUpstream, dialect: Dialect) -> str:
    prompt: str = fake.chat_requests(dialect)[-1].json()["messages"][0]["content"]
    return prompt


async def stream_sse(
    client: httpx.AsyncClient, dialect: Dialect, payload: dict[str, Any], model: str = MODEL
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    target = url("streamGenerateContent", model, query="alt=sse")
    response = await client.post(target, json=payload, headers=key(dialect))
    if response.status_code != 200:
        return response, []
    assert response.headers["content-type"].startswith("text/event-stream")
    return response, sse_chunks(response.text)


# Text


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_generate_content_text(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="Bonjour from Qwen"))
    payload = user("say hi", systemInstruction={"parts": [{"text": "Be French."}]})
    response = await client.post(url("generateContent"), json=payload, headers=key(dialect))
    assert response.status_code == 200
    data = response.json()
    [candidate] = data["candidates"]
    assert candidate["content"] == {"role": "model", "parts": [{"text": "Bonjour from Qwen"}]}
    assert candidate["finishReason"] == "STOP"
    assert data["modelVersion"] == MODEL
    assert data["responseId"].startswith(f"{dialect}.")
    usage = data["usageMetadata"]
    assert usage["promptTokenCount"] > 0 and usage["candidatesTokenCount"] > 0
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    prompt = upstream_prompt(fake, dialect)
    assert "say hi" in prompt and "Be French." in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_history_roles_reach_the_upstream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "my name is Ada"}]},
            {"role": "model", "parts": [{"text": "secret", "thought": True}, {"text": "Hi Ada"}]},
            {"parts": [{"text": "what is my name?"}]},
        ]
    }
    response = await client.post(url("generateContent"), json=payload, headers=key(dialect))
    assert response.status_code == 200
    prompt = upstream_prompt(fake, dialect)
    assert "my name is Ada" in prompt and "Hi Ada" in prompt and "what is my name?" in prompt
    assert "secret" not in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stream_sse_chunk_by_chunk(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="流式 streamed answer", piece=4, usage_numbers=(5, 7)))
    response, chunks = await stream_sse(client, dialect, user("hi"))
    assert response.status_code == 200
    assert len(chunks) > 3
    assert text_of(chunks) == "流式 streamed answer"
    assert finishes(chunks) == ["STOP"] and "finishReason" in chunks[-1]["candidates"][0]
    for chunk in chunks:
        assert chunk["candidates"][0]["content"]["role"] == "model"
        assert chunk["modelVersion"] == MODEL
        assert chunk["responseId"] == chunks[0]["responseId"]
    usage = chunks[-1]["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"]) == (5, 7)
    assert usage["totalTokenCount"] == 12


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_stream_without_alt_sse_is_a_json_array_written_as_it_grows(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="first part, then the rest", piece=5, hold_after=2))
    target = url("streamGenerateContent", version="v1")
    async with client.stream("POST", target, json=user("hi"), headers=key(dialect)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        raw = b""
        pieces = response.aiter_bytes()
        while b'"text":"first"' not in raw:
            raw += await anext(pieces)
        assert raw.startswith(b"[{") and not raw.rstrip().endswith(b"]")
        fake.release()
        async for piece in pieces:
            raw += piece
    chunks = json.loads(raw)
    assert isinstance(chunks, list) and len(chunks) > 3
    assert text_of(chunks) == "first part, then the rest"
    assert finishes(chunks) == ["STOP"]
    assert "usageMetadata" in chunks[-1]


# Keep-alives


async def test_keepalives_before_the_first_event_are_data_frames(
    make_server: Any, fake: FakeUpstream
) -> None:
    base = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("intl", Script(answer="late but fine", hold_after=0))
    target = url("streamGenerateContent", query="alt=sse")
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream("POST", target, json=user("hi"), headers=key("intl")) as response,
    ):
        raw = ""
        lines = response.aiter_text()
        while "\n\n" not in raw:
            raw += await anext(lines)
        fake.release()
        async for piece in lines:
            raw += piece
    chunks = sse_chunks(raw)  # no ":" comment lines: Google's SDKs cannot parse them
    assert parts_of(chunks[:1]) == [{"text": ""}]
    assert text_of(chunks) == "late but fine"
    assert finishes(chunks) == ["STOP"]


async def test_json_array_keepalives_are_whitespace(make_server: Any, fake: FakeUpstream) -> None:
    base = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("cn", Script(answer="late", hold_after=0))
    async with (
        httpx.AsyncClient(base_url=base, timeout=30) as client,
        client.stream(
            "POST", url("streamGenerateContent"), json=user("hi"), headers=key("cn")
        ) as response,
    ):
        pieces = response.aiter_bytes()
        first = await anext(pieces)
        fake.release()
        rest = b"".join([piece async for piece in pieces])
    assert first.strip() == b""
    chunks = json.loads(first + rest)
    assert text_of(chunks) == "late"


# countTokens and models


async def test_count_tokens(client: httpx.AsyncClient, fake: FakeUpstream) -> None:
    async def count(payload: dict[str, Any]) -> int:
        response = await client.post(url("countTokens"), json=payload, headers=key("intl"))
        assert response.status_code == 200, response.text
        assert set(response.json()) == {"totalTokens"}
        total: int = response.json()["totalTokens"]
        return total

    plain = await count(user("hello there, how are you?"))
    assert plain > 3
    with_system = await count(
        user("hello there, how are you?", systemInstruction={"parts": [{"text": "Be brief."}]})
    )
    assert with_system > plain
    with_tools = await count(
        {
            "generateContentRequest": {
                "model": f"models/{MODEL}",
                **user("hello there, how are you?", tools=[{"functionDeclarations": [WEATHER]}]),
            }
        }
    )
    assert with_tools > plain + 5
    image = {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}
    with_image = await count({"contents": [{"parts": [{"text": "hello"}, image]}]})
    assert with_image > 258
    assert fake.chat_requests("intl") == []


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("how", ["header", "query"])
async def test_model_list(
    client: httpx.AsyncClient, fake: FakeUpstream, version: str, how: str
) -> None:
    if how == "header":
        response = await client.get(f"/{version}/models", headers=key("intl"))
    else:
        response = await client.get(f"/{version}/models", params={"key": CREDENTIALS["intl"]})
    assert response.status_code == 200
    models = response.json()["models"]
    names = [m["name"] for m in models]
    assert f"models/{MODEL}" in names and len(names) == len(set(names))
    entry = models[names.index(f"models/{MODEL}")]
    assert entry["supportedGenerationMethods"] == [
        "generateContent",
        "streamGenerateContent",
        "countTokens",
    ]
    assert entry["displayName"] and entry["inputTokenLimit"] > entry["outputTokenLimit"] > 0


async def test_openai_model_list_is_unchanged(client: httpx.AsyncClient) -> None:
    headers = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
    data = (await client.get("/v1/models", headers=headers)).json()
    assert data["object"] == "list" and MODEL in [m["id"] for m in data["data"]]


@pytest.mark.parametrize("version", ["v1beta", "v1"])
async def test_get_one_model(client: httpx.AsyncClient, version: str) -> None:
    response = await client.get(f"/{version}/models/{MODEL}", headers=key("intl"))
    assert response.status_code == 200
    assert response.json()["name"] == f"models/{MODEL}"
    assert "generateContent" in response.json()["supportedGenerationMethods"]


# Request shapes


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_snake_case_request(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="42", reasoning="six times seven"))
    payload = {
        "contents": [{"role": "user", "parts": [{"text": "6*7?"}]}],
        "system_instruction": {"parts": [{"text": "Answer with a number."}]},
        "generation_config": {
            "max_output_tokens": 100,
            "stop_sequences": ["STOP-HERE"],
            "thinking_config": {"include_thoughts": True, "thinking_budget": 1024},
        },
    }
    data = (await client.post(url("generateContent"), json=payload, headers=key(dialect))).json()
    parts = data["candidates"][0]["content"]["parts"]
    assert parts == [{"text": "six times seven", "thought": True}, {"text": "42"}]
    if dialect == "intl":  # cn reports no reasoning share of its usage
        assert data["usageMetadata"]["thoughtsTokenCount"] > 0
    assert "Answer with a number." in upstream_prompt(fake, dialect)
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["feature_config"]["thinking_enabled"] is True
    else:
        assert sent["deep_search"] == "1"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("stream", [True, False])
async def test_thoughts_only_when_asked(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, stream: bool
) -> None:
    async def ask(config: dict[str, Any]) -> list[dict[str, Any]]:
        fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 323"))
        payload = user("17*19?", generationConfig={"thinkingConfig": config})
        if stream:
            return (await stream_sse(client, dialect, payload))[1]
        response = await client.post(url("generateContent"), json=payload, headers=key(dialect))
        return [response.json()]

    shown = await ask({"includeThoughts": True, "thinkingLevel": "HIGH"})
    assert text_of(shown, thought=True) == "17×19 = 323"
    assert text_of(shown) == "323"
    first_thought = next(i for i, p in enumerate(parts_of(shown)) if p.get("thought"))
    first_text = next(
        i for i, p in enumerate(parts_of(shown)) if p.get("text") and not p.get("thought")
    )
    assert first_thought < first_text
    hidden = await ask({"thinkingBudget": -1})
    assert text_of(hidden, thought=True) == "" and text_of(hidden) == "323"
    off = await ask({"thinkingBudget": 0})
    assert text_of(off) == "323"
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["feature_config"]["thinking_enabled"] is False
    else:
        assert sent["deep_search"] == "0"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_google_search_tool_turns_on_search_and_cites(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    sources = [
        {"title": "Qwen", "url": "https://qwen.example/a", "hostname": "qwen.example"},
        {"title": "B", "url": "https://b.example/b", "hostname": "b.example"},
    ]
    fake.enqueue(dialect, Script(answer="See [[1]].", search_results=sources))
    _, chunks = await stream_sse(client, dialect, user("news?", tools=[{"google_search": {}}]))
    sent = fake.chat_requests(dialect)[-1].json()
    if dialect == "intl":
        assert sent["messages"][0]["chat_type"] == "search"
    else:
        assert sent["enable_search"] is True
    grounding = chunks[-1]["candidates"][0]["groundingMetadata"]["groundingChunks"]
    assert [g["web"]["uri"] for g in grounding] == [s["url"] for s in sources]
    fake.enqueue(dialect, Script(answer="See [[1]].", search_results=sources))
    payload = user("news?", tools=[{"googleSearchRetrieval": {}}])
    data = (await client.post(url("generateContent"), json=payload, headers=key(dialect))).json()
    grounding = data["candidates"][0]["groundingMetadata"]["groundingChunks"]
    assert grounding[0]["web"] == {"uri": "https://qwen.example/a", "title": "Qwen"}


async def test_moderation_finishes_with_safety(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("cn", Script(answer="这是一段会被拦截的回答", moderation=True, error_after=2))
    _, chunks = await stream_sse(client, "cn", user("x"))
    assert text_of(chunks) and "这是一段会被拦截的回答".startswith(text_of(chunks))
    assert finishes(chunks) == ["SAFETY"]


# Function calls (emulated by the gateway: the fake answers with the calling protocol)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_function_call_non_stream(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=TOOL_ANSWER))
    payload = user("weather in Paris?", tools=[{"functionDeclarations": [WEATHER]}])
    data = (await client.post(url("generateContent"), json=payload, headers=key(dialect))).json()
    candidate = data["candidates"][0]
    [part] = candidate["content"]["parts"]
    call = part["functionCall"]
    assert call["name"] == "get_weather" and call["args"] == {"city": "Paris"}
    assert call["id"]
    assert candidate["finishReason"] == "STOP"
    prompt = upstream_prompt(fake, dialect)
    assert "get_weather" in prompt and "City name" in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_function_call_stream_then_result_round_trip(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer=TOOL_ANSWER, piece=7))
    tools = [{"functionDeclarations": [WEATHER]}]
    _, chunks = await stream_sse(client, dialect, user("weather in Paris?", tools=tools))
    calls = [p["functionCall"] for p in parts_of(chunks) if "functionCall" in p]
    assert [(c["name"], c["args"]) for c in calls] == [("get_weather", {"city": "Paris"})]
    assert text_of(chunks) == "" and "[call" not in json.dumps(chunks)
    assert finishes(chunks) == ["STOP"]
    call = calls[0]
    fake.enqueue(dialect, Script(answer="It is sunny in Paris."))
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather in Paris?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": call, "thoughtSignature": "skip_thought_signature"}],
            },
            {
                "role": "user",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "id": call["id"],
                            "response": {"output": "sunny, 24 °C"},
                        }
                    }
                ],
            },
        ],
        "tools": tools,
    }
    _, chunks = await stream_sse(client, dialect, payload)
    assert text_of(chunks) == "It is sunny in Paris."
    assert f"[TOOL_RESULT for {call['id']}] sunny, 24 °C" in upstream_prompt(fake, dialect)


async def test_function_response_without_ids_matches_the_call_by_name(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "weather?"}]},
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {
                "role": "function",
                "parts": [
                    {
                        "functionResponse": {
                            "name": "get_weather",
                            "response": {"temperature": 24, "sky": "clear"},
                        }
                    }
                ],
            },
        ],
        "tools": [{"functionDeclarations": [WEATHER]}],
    }
    response = await client.post(url("generateContent"), json=payload, headers=key("intl"))
    assert response.status_code == 200
    prompt = upstream_prompt(fake, "intl")
    assert "[call:get_weather]" in prompt
    assert '[TOOL_RESULT for call_0] {"temperature": 24, "sky": "clear"}' in prompt


async def test_google_schemas_become_json_schema(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    declaration = {
        "name": "read_files",
        "description": "Read files",
        "parameters": {
            "type": "OBJECT",
            "property_ordering": ["dirPath", "file_names"],
            "properties": {
                "dirPath": {"type": "STRING", "nullable": True},
                "file_names": {"type": "ARRAY", "items": {"type": "STRING"}, "max_items": "3"},
                "mode": {"any_of": [{"type": "STRING", "enum": ["TEXT"]}, {"type": "INTEGER"}]},
            },
        },
    }
    other = {"name": "delete_everything", "description": "Never allowed here"}
    payload = user(
        "read them",
        tools=[{"function_declarations": [declaration, other]}],
        tool_config={
            "function_calling_config": {"mode": "ANY", "allowed_function_names": ["read_files"]}
        },
    )
    response = await client.post(url("generateContent"), json=payload, headers=key("intl"))
    assert response.status_code == 200
    prompt = upstream_prompt(fake, "intl")
    assert '"dirPath":{"type":["string","null"]}' in prompt
    assert '"file_names":{"type":"array","items":{"type":"string"},"maxItems":3}' in prompt
    assert '"anyOf":[{"type":"string","enum":["TEXT"]},{"type":"integer"}]' in prompt
    assert "propertyOrdering" not in prompt and "property_ordering" not in prompt
    assert "read_files" in prompt and "delete_everything" not in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_json_mode_like_gemini_cli_router(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    verdict = {"complexity_reasoning": "a greeting", "complexity_score": 12}
    fake.enqueue(dialect, Script(answer=f"```json\n{json.dumps(verdict)}\n```"))
    schema = {
        "type": "OBJECT",
        "properties": {
            "complexity_reasoning": {"type": "STRING"},
            "complexity_score": {"type": "INTEGER", "minimum": 1, "maximum": 100},
        },
        "required": ["complexity_reasoning", "complexity_score"],
    }
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "<session_context>…</session_context>"}]},
            {"role": "user", "parts": [{"text": "say hi"}]},
        ],
        "systemInstruction": {"role": "user", "parts": [{"text": "You are a router."}]},
        "generationConfig": {
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "responseMimeType": "application/json",
            "responseJsonSchema": schema,
            "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
        },
    }
    target = url("generateContent", "gemini-3.5-flash-lite")
    data = (await client.post(target, json=payload, headers=key(dialect))).json()
    parts = data["candidates"][0]["content"]["parts"]
    text = "".join(p["text"] for p in parts if not p.get("thought"))
    assert json.loads(text) == verdict
    assert data["modelVersion"] == "gemini-3.5-flash-lite"
    assert '"complexity_score":{"type":"integer"' in upstream_prompt(fake, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_gemini_cli_main_request(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    names = [
        "update_topic",
        "list_directory",
        "read_file",
        "grep_search",
        "glob",
        "google_web_search",
        "enter_plan_mode",
        "invoke_agent",
    ]
    declarations = [
        {
            "name": name,
            "description": f"The {name} tool. " * 20,
            "parametersJsonSchema": {
                "type": "object",
                "properties": {"dir_path": {"type": "string", "description": "A path"}},
                "required": ["dir_path"],
            },
        }
        for name in names
    ]
    system = "You are an interactive CLI agent. " * 900  # ~30 KB
    payload = {
        "contents": [
            {"role": "user", "parts": [{"text": "<session_context>cwd</session_context>"}]},
            {"role": "user", "parts": [{"text": "say hi"}]},
        ],
        "systemInstruction": {"role": "user", "parts": [{"text": system}]},
        "tools": [{"functionDeclarations": declarations}],
        "generationConfig": {
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "thinkingConfig": {"includeThoughts": True, "thinkingLevel": "HIGH"},
        },
    }
    fake.enqueue(dialect, Script(answer="hi", reasoning="a greeting"))
    _, chunks = await stream_sse(client, dialect, payload, model="gemini-3.1-pro-preview")
    assert text_of(chunks) == "hi" and text_of(chunks, thought=True) == "a greeting"
    assert finishes(chunks) == ["STOP"]
    prompt = upstream_prompt(fake, dialect)
    assert all(name in prompt for name in names) and "dir_path" in prompt
    assert "say hi" in prompt and "interactive CLI agent" in prompt


# Errors, in Google's envelope

BEFORE_FIRST_BYTE = [
    ("intl", "quota", 429, "RESOURCE_EXHAUSTED"),
    ("intl", "waf", 503, "UNAVAILABLE"),
    ("intl", "http_401", 401, "UNAUTHENTICATED"),
    ("intl", "http_429", 429, "RESOURCE_EXHAUSTED"),
    ("intl", "http_500", 502, "UNAVAILABLE"),
    ("intl", "http_504_html", 504, "DEADLINE_EXCEEDED"),
    ("intl", "context_length", 400, "INVALID_ARGUMENT"),
    ("cn", "not_login", 401, "UNAUTHENTICATED"),
    ("cn", "waf_html", 503, "UNAVAILABLE"),
    ("cn", "http_502", 502, "UNAVAILABLE"),
    ("cn", "http_504_html", 504, "DEADLINE_EXCEEDED"),
]


def google_error(data: Any, code: int, status: str) -> dict[str, Any]:
    assert set(data) == {"error"}
    error: dict[str, Any] = data["error"]
    assert {"code", "message", "status"} <= set(error)
    assert (error["code"], error["status"]) == (code, status)
    assert error["message"]
    return error


@pytest.mark.parametrize(("dialect", "name", "code", "status"), BEFORE_FIRST_BYTE)
@pytest.mark.parametrize("method", ["generateContent", "streamGenerateContent"])
async def test_upstream_errors_before_the_first_byte(
    client: httpx.AsyncClient,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    code: int,
    status: str,
    method: str,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    target = url(method, query="alt=sse" if method == "streamGenerateContent" else "")
    response = await client.post(target, json=user("x"), headers=key(dialect))
    assert response.status_code == code
    assert response.headers["content-type"].startswith("application/json")
    error = google_error(response.json(), code, status)
    if code == 429:
        delays = [d for d in error["details"] if d["@type"].endswith("RetryInfo")]
        assert delays[0]["retryDelay"] == response.headers["retry-after"] + "s"


@pytest.mark.parametrize(("dialect", "name"), [("intl", "quota"), ("cn", "error_frame")])
async def test_error_mid_stream_is_one_data_frame_then_the_end(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, name: str
) -> None:
    fake.enqueue(dialect, Script(answer="partial answer here", error=name, error_after=2))
    response, chunks = await stream_sse(client, dialect, user("x"))
    assert response.status_code == 200
    *answer, last = chunks
    assert "partial answer here".startswith(text_of(answer)) and text_of(answer)
    assert finishes(answer) == []
    google_error(last, last["error"]["code"], last["error"]["status"])
    assert last["error"]["code"] in (429, 502)


async def test_error_mid_json_array_is_its_last_element(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="partial answer here", error="quota", error_after=2))
    response = await client.post(url("streamGenerateContent"), json=user("x"), headers=key("intl"))
    chunks = response.json()
    assert text_of(chunks[:-1])
    google_error(chunks[-1], 429, "RESOURCE_EXHAUSTED")


async def test_request_errors(client: httpx.AsyncClient, make_server: Any) -> None:
    async def post(target: str, **kwargs: Any) -> httpx.Response:
        return await client.post(target, **kwargs)

    missing = await post(url("generateContent"), json=user("x"))
    google_error(missing.json(), 401, "UNAUTHENTICATED")
    assert missing.status_code == 401
    bad_json = await post(url("generateContent"), content=b"{nope", headers=key("cn"))
    google_error(bad_json.json(), 400, "INVALID_ARGUMENT")
    empty = await post(url("generateContent"), json={"contents": []}, headers=key("cn"))
    google_error(empty.json(), 400, "INVALID_ARGUMENT")
    image = {"inlineData": {"mimeType": "image/png", "data": "!!not base64"}}
    media = await post(
        url("generateContent"), json={"contents": [{"parts": [image]}]}, headers=key("cn")
    )
    assert "malformed" in google_error(media.json(), 400, "INVALID_ARGUMENT")["message"]
    role = {"contents": [{"role": "robot", "parts": [{"text": "x"}]}]}
    bad_role = await post(url("generateContent"), json=role, headers=key("cn"))
    google_error(bad_role.json(), 400, "INVALID_ARGUMENT")
    mode = user("x", toolConfig={"functionCallingConfig": {"mode": "SOMETIMES"}})
    bad_mode = await post(url("generateContent"), json=mode, headers=key("cn"))
    google_error(bad_mode.json(), 400, "INVALID_ARGUMENT")
    unknown = await post(url("embedContent"), json=user("x"), headers=key("cn"))
    google_error(unknown.json(), 404, "NOT_FOUND")
    assert unknown.status_code == 404
    small = make_server(max_body_bytes=100)
    async with httpx.AsyncClient(base_url=small) as other:
        big = await other.post(url("generateContent"), json=user("x" * 500), headers=key("cn"))
    assert big.status_code == 413
    google_error(big.json(), 413, "INVALID_ARGUMENT")


async def test_bearer_and_query_keys_work(client: httpx.AsyncClient) -> None:
    bearer = {"authorization": f"Bearer {CREDENTIALS['intl']}"}
    by_bearer = await client.post(url("generateContent"), json=user("x"), headers=bearer)
    assert by_bearer.status_code == 200
    query = f"key={CREDENTIALS['cn']}"
    by_query = await client.post(url("generateContent", query=query), json=user("x"))
    assert by_query.status_code == 200


async def test_pool_mode_rejects_a_wrong_key(make_server: Any) -> None:
    base = make_server(tokens=[CREDENTIALS["intl"]], api_keys=["sk-client"])
    async with httpx.AsyncClient(base_url=base) as client:
        wrong = await client.post(
            url("generateContent"), json=user("x"), headers={"x-goog-api-key": "nope"}
        )
        listed = await client.get("/v1beta/models", headers={"x-goog-api-key": "nope"})
        right = await client.post(
            url("generateContent"), json=user("x"), headers={"x-goog-api-key": "sk-client"}
        )
    google_error(wrong.json(), 401, "UNAUTHENTICATED")
    google_error(listed.json(), 401, "UNAUTHENTICATED")
    assert right.status_code == 200
