"""cn uploads through the real flow against the fake: workspace oss_token, the pre-signed OSS PUT,
the callback, then an `image/url` item before the text; text documents inline; limits and
failures raised before the chat request."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from qwen_free_api.chat import Attachment, ChatRequest, Message
from qwen_free_api.credentials import parse_credential
from qwen_free_api.errors import (
    BadRequest,
    CredentialRejected,
    PayloadTooLarge,
    SigningFailed,
    UpstreamError,
)
from qwen_free_api.events import collect
from qwen_free_api.janitor import Janitor
from qwen_free_api.testing import FakeUpstream, Recorded
from qwen_free_api.upstreams import cn_sign
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.cn_files import image_type
from qwen_free_api.upstreams.http import Http

from support import CN_TICKET, settings_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0" + b"\x10" * 40
WEBP = b"RIFF\x20\x00\x00\x00WEBPVP8 " + b"\x00" * 20


@pytest.fixture
async def cn(fake_server: tuple[FakeUpstream, str], tmp_path: Path) -> AsyncIterator[Cn]:
    settings = settings_for(fake_server[1], tmp_path / "s.db")
    http = Http(settings)
    yield Cn(settings, http, Janitor())
    await http.close()


def ask(*attachments: Attachment, text: str = "what is this?") -> ChatRequest:
    return ChatRequest("qwen", (Message("user", text, attachments=attachments),))


async def answer(cn: Cn, chat: ChatRequest, ticket: str = CN_TICKET) -> str:
    done = await collect(cn.stream(chat, parse_credential(ticket)))
    return done.text


def calls(fake: FakeUpstream, path: str) -> list[Recorded]:
    return [r for r in fake.requests if r.path == path]


def sent(fake: FakeUpstream) -> list[str]:
    """What reached the fake besides the model list (fetched in the background)."""
    return [r.path for r in fake.requests if r.path != "/api/v1/model/list"]


def registrations(fake: FakeUpstream) -> int:
    return len(calls(fake, "/security/external/access/register"))


async def test_an_image_goes_through_every_step(cn: Cn, fake: FakeUpstream) -> None:
    fake.sign_mode = "hard"  # chat and workspace calls each need their own scene's salt
    text = await answer(cn, ask(Attachment("image", "image/png", "fox.png", PNG)))
    digest = hashlib.sha256(PNG).hexdigest()
    assert f"[image {digest[:12]} fox.png]" in text
    assert [(seen.sha256, seen.name) for seen in fake.attachments_seen["cn"]] == [
        (digest, "fox.png")
    ]
    assert fake.sign_failures == []
    (token,) = calls(fake, "/1/oss_token")
    md5 = base64.b64encode(hashlib.md5(PNG).digest()).decode()
    assert token.json() == {
        "file_name": "fox.png",
        "content_type": "application/octet-stream",
        "content_md5": md5,
        "size": len(PNG),
    }
    assert token.query["req_id"] and token.query["ut"] and token.query["biz_id"] == "ai_qwen"
    (put,) = [r for r in fake.requests if r.method == "PUT"]
    assert put.query == {"req_id": token.query["req_id"], "biz_id": "ai_qwen"} and put.body == PNG
    (callback,) = calls(fake, "/1/oss/callback")
    assert callback.json()["file_type"] == "PNG" and callback.json()["entry"] == "qwen_pc"
    body = fake.chat_requests("cn")[-1].json()
    item, text_item = body["messages"]
    assert (item["mime_type"], item["content"], text_item["mime_type"]) == (
        "image/url",
        "",
        "text/plain",
    )
    (info,) = item["meta_data"]["resource_infos"]
    assert "auth_key=" in info["url"] and len(info["id"]) == 32
    assert (info["file_format"], info["file_name"], info["file_size"]) == (
        "png",
        "fox.png",
        str(len(PNG)),
    )
    assert "[image: fox.png]" in text_item["content"]


async def test_the_same_bytes_are_uploaded_once_per_credential(cn: Cn, fake: FakeUpstream) -> None:
    image = Attachment("image", "image/png", "a.png", PNG)
    twice = ask(image, Attachment("image", "image/png", "b.png", PNG))
    await answer(cn, twice)
    await answer(cn, ask(image))
    assert len(calls(fake, "/1/oss_token")) == 1
    assert len([r for r in fake.requests if r.method == "PUT"]) == 1
    items = fake.chat_requests("cn")[0].json()["messages"]
    assert [i["mime_type"] for i in items] == ["image/url", "image/url", "text/plain"]
    await answer(cn, ask(image), ticket="tk-another-account")
    assert len(calls(fake, "/1/oss_token")) == 2  # another credential uploads its own copy


async def test_type_and_name_are_sniffed_when_missing(cn: Cn, fake: FakeUpstream) -> None:
    text = await answer(cn, ask(Attachment("image", "", "", JPEG)))
    assert f"[image {hashlib.sha256(JPEG).hexdigest()[:12]} image.jpg]" in text
    assert calls(fake, "/1/oss/callback")[0].json()["file_type"] == "JPG"
    assert image_type(Attachment("image", "", "", WEBP)) == ("image/webp", "image.webp")
    assert image_type(Attachment("image", "image/gif", "dir/anim", b"GIF89a")) == (
        "image/gif",
        "anim.gif",
    )


async def test_a_text_document_goes_inline(cn: Cn, fake: FakeUpstream) -> None:
    notes = Attachment("document", "text/markdown", "notes.md", "# Plan\nship it 🚀".encode())
    text = await answer(cn, ask(notes, text="summarise"))
    prompt = fake.chat_requests("cn")[-1].json()["messages"][-1]["content"]
    assert prompt.startswith("[document: notes.md]\n# Plan\nship it 🚀\n[end of document]")
    assert prompt.endswith("summarise") and "ship it" in text
    assert calls(fake, "/1/oss_token") == [] and fake.attachments_seen["cn"] == []


async def test_other_documents_are_refused_with_the_reason(cn: Cn, fake: FakeUpstream) -> None:
    pdf = Attachment("document", "application/pdf", "paper.pdf", b"%PDF-1.4 tiny")
    with pytest.raises(BadRequest, match="cannot take application/pdf documents") as caught:
        await answer(cn, ask(Attachment("image", "image/png", "a.png", PNG), pdf))
    assert caught.value.status == 400 and "intl" in caught.value.message
    assert sent(fake) == []  # refused before any upload or chat


async def test_limits_are_checked_before_any_upload(cn: Cn, fake: FakeUpstream) -> None:
    many = [Attachment("image", "image/png", f"{i}.png", PNG + bytes([i])) for i in range(11)]
    with pytest.raises(BadRequest, match="at most 10") as caught:
        await answer(cn, ask(*many))
    assert caught.value.status == 400
    big = Attachment("image", "image/png", "big.png", PNG + b"\0" * (10 * 1024 * 1024))
    with pytest.raises(PayloadTooLarge):
        await answer(cn, ask(big))
    assert sent(fake) == []


async def test_a_refused_signature_registers_again_once(cn: Cn, fake: FakeUpstream) -> None:
    fake.sign_mode = "hard"
    await answer(cn, ask(text="warm up"))
    before = registrations(fake)
    fake.expire_signing()  # the device our signer holds is now refused
    text = await answer(cn, ask(Attachment("image", "image/png", "a.png", PNG)))
    assert "a.png]" in text and registrations(fake) == before + 1
    assert any("expired" in reason for reason in fake.sign_failures)


@pytest.mark.parametrize("mode", ["hard", "soft"])
async def test_a_signature_refused_twice_is_a_signing_failure(
    cn: Cn, fake: FakeUpstream, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    fake.sign_mode = mode
    monkeypatch.setattr(cn_sign, "request_sign", lambda *args: "AAAA")
    with pytest.raises(SigningFailed):
        await answer(cn, ask(Attachment("image", "image/png", "a.png", PNG)))
    assert len(calls(fake, "/1/oss_token")) == 2 and registrations(fake) == 2
    assert fake.chat_requests("cn") == [] and fake.media.cn_slots == {}


async def test_upload_failures_are_typed(cn: Cn, fake: FakeUpstream) -> None:
    image = Attachment("image", "image/png", "a.png", PNG)
    with pytest.raises(CredentialRejected):
        await answer(cn, ask(image), ticket="bad-ticket")
    fake.media.oss_token_ttl = -1.0  # every PUT is refused as expired (HTTP 403 XML)
    with pytest.raises(UpstreamError, match="403"):
        await answer(cn, ask(image))
    assert fake.chat_requests("cn") == [] and calls(fake, "/1/oss/callback") == []
    with pytest.raises(BadRequest, match="no data"):
        await answer(cn, ask(Attachment("image", "image/png", "x.png", b"")))


async def test_only_the_new_turn_is_uploaded_when_continuing(cn: Cn, fake: FakeUpstream) -> None:
    first = ask(Attachment("image", "image/png", "a.png", PNG), text="look")
    done = await collect(cn.stream(first, parse_credential(CN_TICKET)))
    later = ChatRequest(
        "qwen",
        (*first.messages, Message("assistant", done.text), Message("user", "and now?")),
        conversation_id=done.conversation_id,
    )
    await answer(cn, later)
    second = fake.chat_requests("cn")[-1].json()
    assert [m["mime_type"] for m in second["messages"]] == ["text/plain"]
    assert second["scene_param"] == "continue_chat"


def test_registration_keeps_each_scene_pool_apart() -> None:
    def registered(relate: list[dict[str, Any]]) -> cn_sign.Device:
        data = {"eo-clt-dvidn": "eCy#d", "eo-clt-actkn": "top", "eo-clt-bacsft": ["t1", "t2"]}
        return cn_sign._device_from(
            json.dumps({"status": 0, "data": data | {"unifyRelate": relate}}).encode()
        )

    chat = {"businessScene": "qwen_chat", "eo-clt-actkn": "c", "eo-clt-bacsft": ["c1"]}
    work = {"businessScene": "workspace_api", "eo-clt-actkn": "w", "eo-clt-bacsft": ["w1"]}
    device = registered([chat, work])
    headers = cn_sign.signed_headers(device, [("a", "1")], b"{}", scene="workspace_api")
    assert (headers["eo-clt-actkn"], headers["eo-clt-sacsft"]) == ("w", "w1")
    assert (device.actkn, device.salts, device.pool("workspace_api").salts) == ("c", ["c1"], [])
    bare = registered([])  # no scene pools: both scenes spend the top-level salts, once each
    cn_sign.signed_headers(bare, [], b"", scene="workspace_api")
    assert cn_sign.signed_headers(bare, [], b"")["eo-clt-sacsft"] == "t1" and bare.salts == []
