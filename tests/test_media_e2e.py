"""Images reach the upstream chat from every client dialect, inline or by URL, on both
backends; URLs that point into private networks are refused and never fetched."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from qwen_free_api.testing import FakeUpstream, ServerThread

from support import CREDENTIALS

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
B64 = base64.b64encode(PNG).decode()
DATA_URL = f"data:image/png;base64,{B64}"
DIGEST = hashlib.sha256(PNG).hexdigest()[:12]


class Images:
    """A local image host that counts what it served."""

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def image(request: Request) -> Response:
            self.hits.append(request.url.path)
            return Response(PNG, media_type="image/png")

        self.app = Starlette(routes=[Route("/{name}", image)])


@pytest.fixture(scope="module")
def image_host() -> Iterator[tuple[Images, str]]:
    images = Images()
    with ServerThread(images.app) as thread:
        yield images, thread.url


def openai_chat(image: str) -> tuple[str, dict[str, Any]]:
    content = [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": image}},
    ]
    return "/v1/chat/completions", {
        "model": "qwen",
        "messages": [{"role": "user", "content": content}],
    }


def responses(image: str) -> tuple[str, dict[str, Any]]:
    content = [{"type": "input_text", "text": "what?"}, {"type": "input_image", "image_url": image}]
    return "/v1/responses", {"model": "qwen", "input": [{"role": "user", "content": content}]}


def anthropic(image: str) -> tuple[str, dict[str, Any]]:
    if image.startswith("data:"):
        source = {"type": "base64", "media_type": "image/png", "data": B64}
    else:
        source = {"type": "url", "url": image}
    content = [{"type": "image", "source": source}, {"type": "text", "text": "what?"}]
    body = {
        "model": "claude-x",
        "max_tokens": 100,
        "messages": [{"role": "user", "content": content}],
    }
    return "/v1/messages", body


def gemini(image: str) -> tuple[str, dict[str, Any]]:
    if image.startswith("data:"):
        part: dict[str, Any] = {"inlineData": {"mimeType": "image/png", "data": B64}}
    else:
        part = {"fileData": {"mimeType": "image/png", "fileUri": image}}
    body = {"contents": [{"role": "user", "parts": [{"text": "what?"}, part]}]}
    return "/v1beta/models/qwen:generateContent", body


DIALECTS = {"openai": openai_chat, "responses": responses, "anthropic": anthropic, "gemini": gemini}


def answer_text(kind: str, body: dict[str, Any]) -> str:
    if kind == "openai":
        return str(body["choices"][0]["message"]["content"])
    if kind == "responses":
        return str(body["output"][0]["content"][0]["text"])
    if kind == "anthropic":
        return str(body["content"][0]["text"])
    return str(body["candidates"][0]["content"]["parts"][0]["text"])


async def ask(client: httpx.AsyncClient, kind: str, backend: str, image: str) -> httpx.Response:
    path, body = DIALECTS[kind](image)
    headers = {"authorization": f"Bearer {CREDENTIALS[backend]}"}
    return await client.post(path, json=body, headers=headers)


@pytest.mark.parametrize("backend", ["cn", "intl"])
@pytest.mark.parametrize("kind", list(DIALECTS))
@pytest.mark.parametrize("how", ["inline", "url"])
async def test_an_image_reaches_the_upstream_chat(
    make_server: Any,
    fake: FakeUpstream,
    image_host: tuple[Images, str],
    backend: str,
    kind: str,
    how: str,
) -> None:
    images, host = image_host
    url = make_server(url_allowlist=["127.0.0.1"])
    image = DATA_URL if how == "inline" else f"{host}/fox-{kind}.png"
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await ask(client, kind, backend, image)
    assert response.status_code == 200, response.text
    assert f"[image {DIGEST}" in answer_text(kind, response.json())
    assert [seen.sha256[:12] for seen in fake.attachments_seen[backend]] == [DIGEST]
    if how == "url":
        assert f"/fox-{kind}.png" in images.hits


@pytest.mark.parametrize("kind", list(DIALECTS))
async def test_private_addresses_are_refused_and_never_fetched(
    client: httpx.AsyncClient, fake: FakeUpstream, image_host: tuple[Images, str], kind: str
) -> None:
    images, host = image_host
    before = len(images.hits)
    response = await ask(client, kind, "intl", f"{host}/secret.png")
    assert response.status_code == 400
    assert "private" in response.text or "loopback" in response.text
    assert len(images.hits) == before
    assert not fake.chat_requests("intl")


PDF = b"%PDF-1.4\n" + bytes(range(40))
PDF_B64 = base64.b64encode(PDF).decode()
NOTES = "meeting notes: ship on friday"
DOCUMENTS = {
    "openai": {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{PDF_B64}", "filename": "a.pdf"},
    },
    "responses": {
        "type": "input_file",
        "file_data": f"data:application/pdf;base64,{PDF_B64}",
        "filename": "a.pdf",
    },
    "anthropic": {
        "type": "document",
        "title": "a.pdf",
        "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
    },
    "gemini": {"inlineData": {"mimeType": "application/pdf", "data": PDF_B64}},
}


def with_part(kind: str, part: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    path, body = DIALECTS[kind](DATA_URL)
    if kind == "openai":
        body["messages"][0]["content"] = [{"type": "text", "text": "read"}, part]
    elif kind == "responses":
        body["input"][0]["content"] = [{"type": "input_text", "text": "read"}, part]
    elif kind == "anthropic":
        body["messages"][0]["content"] = [part, {"type": "text", "text": "read"}]
    else:
        body["contents"][0]["parts"] = [{"text": "read"}, part]
    return path, body


@pytest.mark.parametrize("kind", list(DIALECTS))
async def test_documents_upload_on_intl_and_are_refused_on_cn(
    client: httpx.AsyncClient, fake: FakeUpstream, kind: str
) -> None:
    # Bytes of its own per case: the server's upload cache outlives the fake's per-test reset.
    pdf = PDF + kind.encode()
    encoded = base64.b64encode(pdf).decode()
    path, body = with_part(kind, json.loads(json.dumps(DOCUMENTS[kind]).replace(PDF_B64, encoded)))
    intl = await client.post(
        path, json=body, headers={"authorization": f"Bearer {CREDENTIALS['intl']}"}
    )
    assert intl.status_code == 200, intl.text
    assert [s.sha256 for s in fake.attachments_seen["intl"]] == [hashlib.sha256(pdf).hexdigest()]
    cn = await client.post(
        path, json=body, headers={"authorization": f"Bearer {CREDENTIALS['cn']}"}
    )
    assert cn.status_code == 400
    assert "cannot take application/pdf" in cn.text
    assert not fake.chat_requests("cn")


async def test_text_documents_go_inline_on_cn(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    part = {
        "type": "document",
        "title": "notes.txt",
        "source": {"type": "text", "media_type": "text/plain", "data": NOTES},
    }
    path, body = with_part("anthropic", part)
    response = await client.post(
        path, json=body, headers={"authorization": f"Bearer {CREDENTIALS['cn']}"}
    )
    assert response.status_code == 200, response.text
    assert NOTES in fake.chat_requests("cn")[-1].json()["messages"][0]["content"]
    assert not fake.attachments_seen["cn"]


@pytest.mark.parametrize("backend", ["cn", "intl"])
async def test_images_of_earlier_turns_are_sent_again(
    client: httpx.AsyncClient, fake: FakeUpstream, backend: str
) -> None:
    first = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": DATA_URL}},
    ]
    messages = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": "a pattern"},  # not an answer of this server
        {"role": "user", "content": "what colour?"},
    ]
    headers = {"authorization": f"Bearer {CREDENTIALS[backend]}"}
    response = await client.post(
        "/v1/chat/completions", json={"model": "qwen", "messages": messages}, headers=headers
    )
    assert response.status_code == 200, response.text
    assert [s.sha256[:12] for s in fake.attachments_seen[backend]] == [DIGEST]
