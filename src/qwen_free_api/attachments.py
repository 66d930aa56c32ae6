"""Images and documents in requests: building them from what clients send, and their limits.

Every dialect turns its own forms (OpenAI `image_url`, Anthropic `image` blocks, Gemini
`inline_data`, …) into `chat.Attachment` with these helpers, so they are decoded and checked the
same way everywhere. URLs are not fetched here: the gateway fetches them safely (fetch.py)
before anything is uploaded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import posixpath
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from qwen_free_api.chat import Attachment, ChatRequest, Message
from qwen_free_api.errors import BadRequest, PayloadTooLarge
from qwen_free_api.fetch import FetchLimits, fetch
from qwen_free_api.settings import Settings

Kind = Literal["image", "document"]

TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/x-yaml",
    "application/yaml",
    "application/javascript",
    "application/x-sh",
    "application/toml",
)
DOCUMENT_TYPES = (
    *TEXT_TYPES,
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/epub+zip",
)


@dataclass(frozen=True, slots=True)
class Limits:
    """What one backend accepts in one request."""

    max_bytes: int  # per attachment
    max_count: int  # per request (every kept turn's attachments go in one upstream message)


LIMITS = {"intl": Limits(20 * 1024 * 1024, 5), "cn": Limits(10 * 1024 * 1024, 10)}


def kind_of(mime: str) -> Kind:
    return "image" if mime.lower().startswith("image/") else "document"


def from_url(url: str, kind: Kind | None = None, name: str = "", mime: str = "") -> Attachment:
    """An attachment from a `data:` URL (decoded now) or an http(s) URL (fetched later)."""
    url = url.strip()
    if url[:5].lower() == "data:":
        found_mime, data = decode_data_url(url)
        if not data:
            raise BadRequest("a data: URL holds no data")
        mime = found_mime or mime
        return Attachment(kind or kind_of(mime), mime, name, data)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise BadRequest(f"only http, https and data: URLs are accepted, not {scheme or url!r}:")
    return Attachment(kind or "image", mime, name or _name_in(url), url=url)


def from_base64(data: str, mime: str, kind: Kind | None = None, name: str = "") -> Attachment:
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("an attachment's base64 data is malformed") from None
    if not raw:
        raise BadRequest("an attachment's base64 data is empty")
    return Attachment(kind or kind_of(mime), mime, name, raw)


def from_text(text: str, name: str = "", mime: str = "text/plain") -> Attachment:
    return Attachment("document", mime, name, text.encode())


def decode_data_url(url: str) -> tuple[str, bytes]:
    header, comma, payload = url.partition(",")
    if not comma:
        raise BadRequest("a data: URL has no comma")
    params = header[5:].split(";")
    mime = params[0].strip().lower()
    if "base64" in (p.strip().lower() for p in params[1:]):
        try:
            return mime, base64.b64decode(payload, validate=False)
        except (binascii.Error, ValueError):
            raise BadRequest("a data: URL's base64 data is malformed") from None
    return mime, urllib.parse.unquote_to_bytes(payload)


def _name_in(url: str) -> str:
    return posixpath.basename(urllib.parse.urlsplit(url).path)


def text_like(attachment: Attachment) -> bool:
    return attachment.mime.lower().startswith(TEXT_TYPES)


def document_text(attachment: Attachment) -> str:
    """A text-like document's contents, for backends that only take documents inline."""
    return (attachment.data or b"").decode("utf-8", errors="replace")


def sent_attachments(chat: ChatRequest) -> list[Attachment]:
    """The attachments of the turns that go upstream (only the new turn when continuing)."""
    messages: tuple[Message, ...] = chat.messages
    if chat.conversation_id:
        tail: list[Message] = []
        for message in reversed(messages):
            if message.role == "assistant":
                break
            tail.append(message)
        messages = tuple(reversed(tail))
    return [a for m in messages for a in m.attachments]


def check_limits(attachments: list[Attachment], backend: str) -> None:
    """Refuse, before any upload, what the backend would refuse."""
    limits = LIMITS[backend]
    if len(attachments) > limits.max_count:
        raise BadRequest(
            f"the {backend} backend takes at most {limits.max_count} images and documents "
            f"per request; this one has {len(attachments)}"
        )
    for attachment in attachments:
        size = len(attachment.data or b"")
        if size > limits.max_bytes:
            raise PayloadTooLarge(
                f"{attachment.name or 'an attachment'} is {size} bytes; the {backend} backend "
                f"takes at most {limits.max_bytes}"
            )


async def fetch_attachments(chat: ChatRequest, settings: Settings) -> ChatRequest:
    """`chat` with the URL attachments of the turns that go upstream fetched (safely)."""
    wanted = {id(a) for a in sent_attachments(chat) if a.data is None and a.url}
    if not wanted:
        return chat
    found: dict[int, Attachment] = {}

    async def one(attachment: Attachment) -> None:
        accept = ("image/",) if attachment.kind == "image" else DOCUMENT_TYPES
        limits = FetchLimits(settings.fetch_max_bytes, settings.fetch_timeout, accept=accept)
        got = await fetch(attachment.url or "", limits, settings.url_allowlist)
        found[id(attachment)] = dataclasses.replace(
            attachment,
            mime=got.content_type,
            name=attachment.name or got.name,
            data=got.data,
            url=None,
        )

    pending = [a for m in chat.messages for a in m.attachments if id(a) in wanted]
    await asyncio.gather(*(one(a) for a in pending))
    messages = tuple(
        dataclasses.replace(m, attachments=tuple(found.get(id(a), a) for a in m.attachments))
        if m.attachments
        else m
        for m in chat.messages
    )
    return dataclasses.replace(chat, messages=messages)
