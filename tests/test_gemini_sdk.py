"""The official google-genai SDK works against the server on both backends, with its default
api_version (v1) and with v1beta: text, stream, thoughts, function calls (manual and automatic),
count_tokens, the model list, keep-alives, and errors raised as the SDK's own exceptions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

DIALECTS = ["cn", "intl"]
MODEL = "qwen3.7-plus"
TOOL_ANSWER = '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n[/function_calls]'
WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="The weather in a city",
    parameters_json_schema={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
NO_AFC = types.AutomaticFunctionCallingConfig(disable=True)

Factory = Callable[..., genai.Client]


def connect(base_url: str, api_key: str, version: str | None = None) -> genai.Client:
    options = types.HttpOptions(
        base_url=base_url,
        api_version=version,
        timeout=30_000,  # milliseconds
        retry_options=types.HttpRetryOptions(attempts=1),
    )
    return genai.Client(vertexai=False, api_key=api_key, http_options=options)


@pytest.fixture
def sdk(server: str) -> Iterator[Factory]:
    clients: list[genai.Client] = []

    def make(dialect: Dialect, version: str | None = None) -> genai.Client:
        client = connect(server, CREDENTIALS[dialect], version)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def upstream_prompt(fake: FakeUpstream, dialect: Dialect) -> str:
    prompt: str = fake.chat_requests(dialect)[-1].json()["messages"][0]["content"]
    return prompt


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("version", [None, "v1beta"])
def test_generate_content(
    sdk: Factory, fake: FakeUpstream, dialect: Dialect, version: str | None
) -> None:
    fake.enqueue(dialect, Script(answer="Hello from Qwen"))
    response = sdk(dialect, version).models.generate_content(
        model=MODEL,
        contents="hi",
        config=types.GenerateContentConfig(system_instruction="Be kind.", temperature=0.2),
    )
    assert response.text == "Hello from Qwen"
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.model_version == MODEL
    usage = response.usage_metadata
    assert usage is not None and usage.total_token_count and usage.total_token_count > 0
    prompt = upstream_prompt(fake, dialect)
    assert "hi" in prompt and "Be kind." in prompt


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("version", [None, "v1beta"])
def test_generate_content_stream(
    sdk: Factory, fake: FakeUpstream, dialect: Dialect, version: str | None
) -> None:
    fake.enqueue(dialect, Script(answer="流式 streamed answer", usage_numbers=(5, 7)))
    chunks = list(sdk(dialect, version).models.generate_content_stream(model=MODEL, contents="hi"))
    assert len(chunks) > 2
    assert "".join(chunk.text or "" for chunk in chunks) == "流式 streamed answer"
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    assert last.usage_metadata.prompt_token_count == 5
    assert last.usage_metadata.candidates_token_count == 7


# google-genai subclasses aiohttp.ClientSession, which aiohttp warns about.
@pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning")
async def test_async_client_over_aiohttp(sdk: Factory, fake: FakeUpstream) -> None:
    client = sdk("intl").aio
    fake.enqueue("intl", Script(answer="async answer"))
    stream = await client.models.generate_content_stream(model=MODEL, contents="hi")
    texts = [chunk.text or "" async for chunk in stream]
    fake.enqueue("intl", Script(answer="whole"))
    response = await client.models.generate_content(model=MODEL, contents="hi")
    await client.aclose()
    assert "".join(texts) == "async answer"
    assert response.text == "whole"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("streamed", [False, True])
def test_thoughts(sdk: Factory, fake: FakeUpstream, dialect: Dialect, streamed: bool) -> None:
    fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 17×20 − 17"))
    config = types.GenerateContentConfig(
        thinking_config=types.ThinkingConfig(
            include_thoughts=True, thinking_level=types.ThinkingLevel.HIGH
        )
    )
    models = sdk(dialect).models
    if streamed:
        responses = list(models.generate_content_stream(model=MODEL, contents="?", config=config))
    else:
        responses = [models.generate_content(model=MODEL, contents="?", config=config)]
    parts = [
        part
        for response in responses
        for candidate in response.candidates or []
        for part in (candidate.content.parts if candidate.content else None) or []
    ]
    assert "".join(p.text or "" for p in parts if p.thought) == "17×19 = 17×20 − 17"
    assert "".join(p.text or "" for p in parts if not p.thought) == "323"


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("streamed", [False, True])
def test_function_call_round_trip(
    sdk: Factory, fake: FakeUpstream, dialect: Dialect, streamed: bool
) -> None:
    client = sdk(dialect)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[WEATHER])], automatic_function_calling=NO_AFC
    )
    question = types.Content(role="user", parts=[types.Part(text="weather in Paris?")])
    fake.enqueue(dialect, Script(answer=TOOL_ANSWER))
    if streamed:
        chunks = list(
            client.models.generate_content_stream(model=MODEL, contents=[question], config=config)
        )
        calls = [call for chunk in chunks for call in chunk.function_calls or []]
        turn = types.Content(role="model", parts=[types.Part(function_call=c) for c in calls])
    else:
        response = client.models.generate_content(model=MODEL, contents=[question], config=config)
        calls = response.function_calls or []
        assert response.candidates and response.candidates[0].content
        turn = response.candidates[0].content
    [call] = calls
    assert (call.name, call.args) == ("get_weather", {"city": "Paris"})
    assert call.id
    result = types.FunctionResponse(id=call.id, name="get_weather", response={"output": "sunny"})
    answer = types.Content(role="user", parts=[types.Part(function_response=result)])
    fake.enqueue(dialect, Script(answer="It is sunny in Paris."))
    final = client.models.generate_content(
        model=MODEL, contents=[question, turn, answer], config=config
    )
    assert final.text == "It is sunny in Paris."
    assert f"[TOOL_RESULT for {call.id}] sunny" in upstream_prompt(fake, dialect)


def test_automatic_function_calling(sdk: Factory, fake: FakeUpstream) -> None:
    seen: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city.

        Args:
            city: City name.
        """
        seen.append(city)
        return "sunny, 24 °C"

    fake.enqueue("intl", Script(answer=TOOL_ANSWER))
    fake.enqueue("intl", Script(answer="Sunny and 24 °C."))
    response = sdk("intl").models.generate_content(
        model=MODEL,
        contents="weather in Paris?",
        config=types.GenerateContentConfig(tools=[get_weather]),
    )
    assert seen == ["Paris"]
    assert response.text == "Sunny and 24 °C."
    assert "sunny, 24 °C" in upstream_prompt(fake, "intl")


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_count_tokens(sdk: Factory, fake: FakeUpstream, version: str | None) -> None:
    counted = sdk("cn", version).models.count_tokens(
        model=MODEL, contents="How many tokens are in this sentence?"
    )
    assert counted.total_tokens is not None and 5 < counted.total_tokens < 20
    assert fake.chat_requests("cn") == []


@pytest.mark.parametrize("version", [None, "v1beta"])
def test_models_list_and_get(sdk: Factory, version: str | None) -> None:
    client = sdk("intl", version)
    models = list(client.models.list())
    names = [model.name for model in models]
    assert f"models/{MODEL}" in names
    found = models[names.index(f"models/{MODEL}")]
    assert found.supported_actions and "generateContent" in found.supported_actions
    assert found.input_token_limit and found.output_token_limit
    assert client.models.get(model=MODEL).name == f"models/{MODEL}"


def test_keepalives_before_the_first_event(make_server: Any, fake: FakeUpstream) -> None:
    base = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("cn", Script(answer="late but fine", hold_after=0))
    client = connect(base, CREDENTIALS["cn"])
    texts: list[str] = []
    for chunk in client.models.generate_content_stream(model=MODEL, contents="hi"):
        if not texts:
            assert chunk.text == ""  # a keep-alive, parsed like any chunk
            fake.release()
        texts.append(chunk.text or "")
    client.close()
    assert "".join(texts) == "late but fine"


ERRORS = [
    ("intl", "quota", errors.ClientError, 429, "RESOURCE_EXHAUSTED"),
    ("intl", "http_401", errors.ClientError, 401, "UNAUTHENTICATED"),
    ("intl", "context_length", errors.ClientError, 400, "INVALID_ARGUMENT"),
    ("intl", "waf", errors.ServerError, 503, "UNAVAILABLE"),
    ("intl", "http_504_html", errors.ServerError, 504, "DEADLINE_EXCEEDED"),
    ("cn", "not_login", errors.ClientError, 401, "UNAUTHENTICATED"),
    ("cn", "http_500", errors.ServerError, 502, "UNAVAILABLE"),
]


@pytest.mark.parametrize(("dialect", "name", "exception", "code", "status"), ERRORS)
@pytest.mark.parametrize("streamed", [False, True])
def test_errors(
    sdk: Factory,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    exception: type[errors.APIError],
    code: int,
    status: str,
    streamed: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    models = sdk(dialect).models
    with pytest.raises(exception) as caught:
        if streamed:
            list(models.generate_content_stream(model=MODEL, contents="hi"))
        else:
            models.generate_content(model=MODEL, contents="hi")
    assert (caught.value.code, caught.value.status) == (code, status)
    assert caught.value.message
    assert len(fake.chat_requests(dialect)) == 1  # no retry


def test_error_mid_stream_raises(sdk: Factory, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="some text first", error="quota", error_after=2))
    texts: list[str] = []
    with pytest.raises(errors.ClientError) as caught:
        for chunk in sdk("intl").models.generate_content_stream(model=MODEL, contents="hi"):
            texts.append(chunk.text or "")
    assert caught.value.code == 429
    assert texts and "some text first".startswith("".join(texts))


def test_wrong_key_in_pool_mode(make_server: Any) -> None:
    base = make_server(tokens=[CREDENTIALS["intl"]], api_keys=["sk-client"])
    client = connect(base, "wrong-key")
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model=MODEL, contents="hi")
    client.close()
    assert (caught.value.code, caught.value.status) == (401, "UNAUTHENTICATED")
