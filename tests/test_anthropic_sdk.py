"""The official anthropic SDK works against the server on both backends: create, stream with the
SDK's own accumulator, thinking, a tool round trip, the beta client (`?beta=true`),
count_tokens, the model list, and every error raised as the SDK's own exception class."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

DIALECTS = ["cn", "intl"]
MODEL = "qwen3.7-plus"
CALL = '[function_calls]\n[call:get_weather]{"city": "Paris"}[/call]\n[/function_calls]'
WEATHER: Any = {
    "name": "get_weather",
    "description": "Current weather of a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
HI: Any = [{"role": "user", "content": "hi"}]

Factory = Callable[[Dialect], Awaitable[anthropic.AsyncAnthropic]]


@pytest.fixture
async def sdk(server: str) -> AsyncIterator[Factory]:
    clients: list[anthropic.AsyncAnthropic] = []

    async def make(dialect: Dialect) -> anthropic.AsyncAnthropic:
        client = anthropic.AsyncAnthropic(
            base_url=server, api_key=CREDENTIALS[dialect], max_retries=0, timeout=30
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


def prompt_sent(fake: FakeUpstream, dialect: Dialect) -> str:
    content: str = fake.chat_requests(dialect)[-1].json()["messages"][0]["content"]
    return content


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_create(sdk: Factory, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(dialect, Script(answer="Hello from Qwen"))
    client = await sdk(dialect)
    message = await client.messages.create(
        model=MODEL, max_tokens=1024, messages=HI, system="You are terse."
    )
    assert message.id.startswith("msg_") and message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert isinstance(message.content[0], anthropic.types.TextBlock)
    assert message.content[0].text == "Hello from Qwen"
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert "You are terse." in prompt_sent(fake, dialect)


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_stream_and_final_message(
    sdk: Factory, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="流式 streamed answer", piece=3))
    client = await sdk(dialect)
    async with client.messages.stream(model=MODEL, max_tokens=1024, messages=HI) as stream:
        texts = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(texts) == "流式 streamed answer"
    assert len(final.content) == 1 and isinstance(final.content[0], anthropic.types.TextBlock)
    assert final.content[0].text == "流式 streamed answer"
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_thinking(sdk: Factory, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(dialect, Script(answer="323", reasoning="17×19 = 323", piece=2))
    client = await sdk(dialect)
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    async with client.messages.stream(
        model=MODEL, max_tokens=4096, messages=HI, thinking=thinking
    ) as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds and "text" in kinds
    first, second = final.content
    assert isinstance(first, anthropic.types.ThinkingBlock) and first.signature
    assert first.thinking == "17×19 = 323"
    assert isinstance(second, anthropic.types.TextBlock) and second.text == "323"
    fake.enqueue(dialect, Script(answer="323", reasoning="again"))
    message = await client.messages.create(
        model=MODEL, max_tokens=4096, messages=HI, thinking=thinking
    )
    assert [block.type for block in message.content] == ["thinking", "text"]


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_tool_round_trip(sdk: Factory, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(dialect, Script(answer="Let me check.\n" + CALL, piece=5))
    client = await sdk(dialect)
    question: Any = {"role": "user", "content": "weather in Paris?"}
    async with client.messages.stream(
        model=MODEL, max_tokens=1024, messages=[question], tools=[WEATHER]
    ) as stream:
        asked = await stream.get_final_message()
    assert asked.stop_reason == "tool_use"
    text, use = asked.content
    assert isinstance(text, anthropic.types.TextBlock) and text.text == "Let me check.\n"
    assert isinstance(use, anthropic.types.ToolUseBlock)
    assert use.name == "get_weather" and use.input == {"city": "Paris"}
    result: Any = {"type": "tool_result", "tool_use_id": use.id, "content": "18°C"}
    history: Any = [question, {"role": "assistant", "content": asked.content}]
    history.append({"role": "user", "content": [result]})
    fake.enqueue(dialect, Script(answer="It is 18°C."))
    answer = await client.messages.create(
        model=MODEL, max_tokens=1024, messages=history, tools=[WEATHER]
    )
    assert isinstance(answer.content[0], anthropic.types.TextBlock)
    assert answer.content[0].text == "It is 18°C." and answer.stop_reason == "end_turn"
    assert f"[TOOL_RESULT for {use.id}] 18°C" in prompt_sent(fake, dialect)


async def test_sdk_non_stream_tool_use(sdk: Factory, fake: FakeUpstream) -> None:
    fake.enqueue("cn", Script(answer=CALL))
    client = await sdk("cn")
    message = await client.messages.create(
        model=MODEL,
        max_tokens=1024,
        messages=HI,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
    )
    [use] = message.content
    assert isinstance(use, anthropic.types.ToolUseBlock) and use.input == {"city": "Paris"}
    assert message.stop_reason == "tool_use"


async def test_sdk_beta_client(sdk: Factory, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="beta answer"))
    client = await sdk("intl")
    async with client.beta.messages.stream(
        model=MODEL, max_tokens=1024, messages=HI, betas=["interleaved-thinking-2025-05-14"]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "beta answer"
    assert fake.chat_requests("intl")


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_count_tokens(sdk: Factory, dialect: Dialect) -> None:
    client = await sdk(dialect)
    plain = await client.messages.count_tokens(model=MODEL, messages=HI)
    with_tools = await client.messages.count_tokens(model=MODEL, messages=HI, tools=[WEATHER])
    assert 0 < plain.input_tokens < with_tools.input_tokens


async def test_sdk_models_list(sdk: Factory) -> None:
    client = await sdk("intl")
    models = [model async for model in client.models.list()]
    ids = [model.id for model in models]
    assert "qwen3.7-plus" in ids and len(ids) == len(set(ids))
    assert all(model.type == "model" and model.display_name for model in models)


@pytest.mark.parametrize(
    ("dialect", "name", "exception", "status"),
    [
        ("intl", "quota", anthropic.RateLimitError, 429),
        ("intl", "http_401", anthropic.AuthenticationError, 401),
        ("intl", "waf", anthropic.InternalServerError, 503),
        ("intl", "http_500", anthropic.InternalServerError, 502),
        ("intl", "http_504_html", anthropic.InternalServerError, 504),
        ("intl", "context_length", anthropic.BadRequestError, 400),
        ("cn", "not_login", anthropic.AuthenticationError, 401),
        ("cn", "waf_html", anthropic.InternalServerError, 503),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_sdk_error_classes(
    sdk: Factory,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    exception: type[anthropic.APIStatusError],
    status: int,
    streamed: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    client = await sdk(dialect)
    with pytest.raises(exception) as caught:
        if streamed:
            async with client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
                await stream.get_final_message()
        else:
            await client.messages.create(model=MODEL, max_tokens=64, messages=HI)
    assert caught.value.status_code == status
    body: Any = caught.value.body
    assert body["type"] == "error" and body["error"]["message"]


async def test_sdk_mid_stream_error_raises(sdk: Factory, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="some text first", error="quota", error_after=2))
    client = await sdk("intl")
    with pytest.raises(anthropic.APIStatusError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HI) as stream:
            await stream.get_final_message()
    body: Any = caught.value.body
    assert body["error"]["type"] == "rate_limit_error"


async def test_sdk_images_reach_the_upstream_and_bad_ones_are_refused(sdk: Factory) -> None:
    client = await sdk("cn")
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + bytes(range(32))).decode()
    image: Any = {"type": "image", "source": {"type": "base64", "media_type": "image/png"}}
    image["source"]["data"] = png
    message = await client.messages.create(
        model=MODEL, max_tokens=64, messages=[{"role": "user", "content": [image]}]
    )
    assert "[image " in message.content[0].text  # type: ignore[union-attr]
    image["source"]["data"] = "!!not base64"
    with pytest.raises(anthropic.BadRequestError, match="malformed"):
        await client.messages.create(
            model=MODEL, max_tokens=64, messages=[{"role": "user", "content": [image]}]
        )
