"""intl uploads through the real flow against the fake: STS grant, signed OSS PUT, the chat's
`files` entry; the same bytes once per credential; limits checked before any upload."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from qwen_free_api.chat import Attachment, ChatRequest, Message
from qwen_free_api.credentials import parse_credential
from qwen_free_api.errors import BadRequest, PayloadTooLarge
from qwen_free_api.events import TextDelta, collect
from qwen_free_api.janitor import Janitor
from qwen_free_api.testing import FakeUpstream
from qwen_free_api.upstreams.http import Http
from qwen_free_api.upstreams.intl import Intl

from support import INTL_JWT, settings_for

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
async def intl(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> AsyncIterator[Intl]:
    settings = settings_for(fake_server[1], tmp_path / "s.db")
    http = Http(settings)
    yield Intl(settings, http, Janitor())
    await http.close()


def ask(*attachments: Attachment, text: str = "what is this?") -> ChatRequest:
    return ChatRequest("qwen", (Message("user", text, attachments=attachments),))


async def answer(intl: Intl, chat: ChatRequest) -> str:
    done = await collect(intl.stream(chat, parse_credential(INTL_JWT)))
    return done.text


async def test_an_image_reaches_the_chat(intl: Intl, fake: FakeUpstream) -> None:
    text = await answer(intl, ask(Attachment("image", "image/png", "fox.png", PNG)))
    digest = hashlib.sha256(PNG).hexdigest()[:12]
    assert f"[image {digest} fox.png]" in text
    assert [seen.sha256[:12] for seen in fake.attachments_seen["intl"]] == [digest]
    assert "[image: fox.png]" in fake.chat_requests("intl")[-1].json()["messages"][0]["content"]


async def test_the_same_bytes_are_uploaded_once(intl: Intl, fake: FakeUpstream) -> None:
    image = Attachment("image", "", "", PNG)  # type and name sniffed from the bytes
    await answer(intl, ask(image))
    await answer(intl, ask(image))
    grants = [r for r in fake.requests if r.path.endswith("/files/getstsToken")]
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert len(grants) == 1 and len(puts) == 1
    assert grants[0].json()["filename"] == "image.png"


async def test_documents_go_up_as_documents(intl: Intl, fake: FakeUpstream) -> None:
    pdf = Attachment("document", "application/pdf", "paper.pdf", b"%PDF-1.4 tiny")
    text = await answer(intl, ask(pdf))
    assert "paper.pdf" in text
    grant = next(r for r in fake.requests if r.path.endswith("/files/getstsToken"))
    assert grant.json()["filetype"] == "document"


async def test_limits_are_checked_before_any_upload(intl: Intl, fake: FakeUpstream) -> None:
    many = [Attachment("image", "image/png", f"{i}.png", PNG + bytes([i])) for i in range(6)]
    with pytest.raises(BadRequest, match="at most 5"):
        await answer(intl, ask(*many))
    big = Attachment("image", "image/png", "big.png", PNG + b"\0" * (20 * 1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        await answer(intl, ask(big))
    assert not [r for r in fake.requests if r.method == "PUT"]


async def test_images_of_earlier_turns_go_along(intl: Intl, fake: FakeUpstream) -> None:
    first = Message("user", "look", attachments=(Attachment("image", "image/png", "a.png", PNG),))
    chat = ChatRequest("qwen", (first, Message("assistant", "a fox"), Message("user", "color?")))
    events = [e async for e in intl.stream(chat, parse_credential(INTL_JWT))]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert "a.png" in text
    assert len(fake.chat_requests("intl")[-1].json()["messages"][0]["files"]) == 1
