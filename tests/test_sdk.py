"""The official openai SDK works against the server on both backends: text, stream, reasoning,
usage, and each error class raised as the SDK's own exception type."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS

DIALECTS = ["cn", "intl"]


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
    fake.enqueue(dialect, Script(answer="Hello from Qwen", reasoning="be nice"))
    client = await sdk(dialect)
    completion = await client.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "hi"}], reasoning_effort="high"
    )
    message = completion.choices[0].message
    assert message.content == "Hello from Qwen"
    assert (message.model_extra or {}).get("reasoning_content") == "be nice"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_sdk_stream_with_usage(sdk: Any, fake: FakeUpstream, dialect: Dialect) -> None:
    fake.enqueue(
        dialect, Script(answer="流式 streamed answer", reasoning="思考", usage_numbers=(5, 7))
    )
    client = await sdk(dialect)
    stream = await client.chat.completions.create(
        model="qwen3.7-plus",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"enable_thinking": True},
    )
    text, reasoning, usage, finish = [], [], None, None
    async for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            finish = choice.finish_reason or finish
    assert "".join(text) == "流式 streamed answer"
    assert "".join(reasoning) == "思考"
    assert finish == "stop"
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (5, 7)


@pytest.mark.parametrize(
    ("dialect", "name", "exception", "status"),
    [
        ("intl", "quota", openai.RateLimitError, 429),
        ("intl", "http_401", openai.AuthenticationError, 401),
        ("intl", "waf", openai.InternalServerError, 503),
        ("intl", "http_500", openai.InternalServerError, 502),
        ("intl", "http_504_html", openai.InternalServerError, 504),
        ("intl", "context_length", openai.BadRequestError, 400),
        ("cn", "not_login", openai.AuthenticationError, 401),
        ("cn", "waf_html", openai.InternalServerError, 503),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_sdk_error_classes(
    sdk: Any,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    exception: type[openai.APIStatusError],
    status: int,
    stream: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    client = await sdk(dialect)
    with pytest.raises(exception) as caught:
        result = await client.chat.completions.create(
            model="qwen", messages=[{"role": "user", "content": "hi"}], stream=stream
        )
        if stream:
            async for _ in result:
                pass
    assert caught.value.status_code == status


async def test_sdk_mid_stream_error_raises(sdk: Any, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(answer="some text first", error="quota", error_after=2))
    client = await sdk("intl")
    stream = await client.chat.completions.create(
        model="qwen", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(openai.APIError):
        async for _ in stream:
            pass


async def test_sdk_models_list(sdk: Any, fake: FakeUpstream) -> None:
    client = await sdk("intl")
    ids = [model.id async for model in client.models.list()]
    assert "qwen3.7-plus" in ids and "qwen3.7-plus-thinking" in ids
