"""Images out: `/v1/images/generations` on both backends (URLs with their signed query kept,
base64 by default as the SDK expects), sizes mapped to ratios, refusals and timeouts as errors,
and drawing from a chat with the `qwen-image` model."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import openai
import pytest

from qwen_free_api.credentials import Dialect
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, chat, stream_chat

DIALECTS = ["cn", "intl"]
PNG = b"\x89PNG\r\n\x1a\n"
SIGNED = {"intl": "key=", "cn": "auth_key="}


def auth(dialect: str) -> dict[str, str]:
    return {"authorization": f"Bearer {CREDENTIALS[dialect]}"}


async def generate(client: httpx.AsyncClient, dialect: str, **body: Any) -> httpx.Response:
    payload = {"prompt": "a red fox in snow", **body}
    return await client.post("/v1/images/generations", json=payload, headers=auth(dialect))


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_urls_keep_their_signed_query(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(images=2, image_pending=2))
    response = await generate(client, dialect, n=2, response_format="url")
    assert response.status_code == 200, response.text
    urls = [item["url"] for item in response.json()["data"]]
    assert len(urls) == 2 and all(SIGNED[dialect] in url for url in urls)
    async with httpx.AsyncClient() as plain:
        image = await plain.get(urls[0])
        unsigned = await plain.get(urls[0].split("?")[0])
    assert image.status_code == 200 and image.content.startswith(PNG)
    assert unsigned.status_code == 403


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_the_sdk_gets_base64_by_default(
    server: str, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(images=1))
    client = openai.AsyncOpenAI(
        base_url=server + "/v1", api_key=CREDENTIALS[dialect], max_retries=0, timeout=30
    )
    async with client:
        result = await client.images.generate(model="gpt-image-1", prompt="a fox", size="1024x1024")
    assert result.data is not None
    data = result.data[0].b64_json
    assert data is not None and base64.b64decode(data).startswith(PNG)


async def test_sizes_map_to_the_nearest_ratio(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    for size, ratio in [("1792x1024", "16:9"), ("1024x1536", "3:4"), ("auto", "1:1")]:
        fake.enqueue("intl", Script(images=1))
        response = await generate(client, "intl", size=size, response_format="url")
        assert response.status_code == 200
        assert fake.chat_requests("intl")[-1].json()["size"] == ratio
    bad = await generate(client, "intl", size="huge")
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "size"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_refusal_is_a_content_filter_error(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(image_refused=True))
    response = await generate(client, dialect)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "content_filter"


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_a_drawing_that_never_ends_times_out(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(image_never=True, image_interval=0.05))
    async with httpx.AsyncClient(base_url=make_server(image_timeout=0.5), timeout=30) as client:
        response = await generate(client, dialect)
    assert response.status_code == 504


async def test_requests_are_checked(client: httpx.AsyncClient) -> None:
    empty = await client.post("/v1/images/generations", json={"prompt": ""}, headers=auth("intl"))
    too_many = await generate(client, "intl", n=9)
    anonymous = await client.post("/v1/images/generations", json={"prompt": "x"})
    assert empty.status_code == 400 and too_many.status_code == 400
    assert anonymous.status_code == 401


@pytest.mark.parametrize("dialect", DIALECTS)
async def test_chat_with_the_drawing_model_answers_with_images(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(images=1, image_pending=3))
    body = {"model": "qwen-image", "messages": [{"role": "user", "content": "draw a fox"}]}
    result = await stream_chat(client, dialect, {**body, "stream": True})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in result.chunks)
    assert text.startswith("![image](") and SIGNED[dialect] in text
    assert result.done
    models = await client.get("/v1/models", headers=auth(dialect))
    assert "qwen-image" in [m["id"] for m in models.json()["data"]]
    fake.enqueue(dialect, Script(image_refused=True))
    refused = await chat(client, dialect, body)
    assert refused.status_code == 400


async def test_a_drawing_chat_stream_keeps_the_connection_alive(
    make_server: Any, fake: FakeUpstream
) -> None:
    url = make_server(first_event_timeout=0.05, keepalive_interval=0.05)
    fake.enqueue("intl", Script(images=1, image_pending=4, image_interval=0.2))
    body = {"model": "qwen-image", "messages": [{"role": "user", "content": "a fox"}]}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        result = await stream_chat(client, "intl", {**body, "stream": True})
    assert result.status == 200
    assert ": keep-alive" in result.raw.split("data: {")[0]  # before the first chunk
    assert "![image](" in result.raw and result.done
