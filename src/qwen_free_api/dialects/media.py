"""Media parts of every dialect: URLs, base64 and file data into `chat.Attachment`.

A thin layer over `qwen_free_api.attachments` that checks the wire values' types, names the
offending part (`param`) in every error, strips line breaks from base64, refuses empty files, and
fills a missing media type from the file name or the data's first bytes. Each dialect's reader
(`openai_part`, shared by Chat Completions and Responses; `anthropic_block`; `gemini_part`)
returns None for a part that is not media, so the caller reads it as text.
"""

from __future__ import annotations

import dataclasses
import mimetypes
import posixpath
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qwen_free_api import attachments
from qwen_free_api.attachments import Kind
from qwen_free_api.chat import Attachment
from qwen_free_api.errors import BadRequest

GEMINI_FILES = "generativelanguage.googleapis.com"  # fileUri of the Files API: not fetchable
OPENAI_MEDIA = frozenset({"image_url", "input_image", "file", "input_file", "input_audio", "audio"})
NO_FILE_IDS = (
    "file ids are not supported (this gateway keeps no uploaded files); "
    "send the contents instead, in {field}"
)
MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


@contextmanager
def at(param: str) -> Iterator[None]:
    """Errors raised inside that name no field name `param`."""
    try:
        yield
    except BadRequest as error:
        if error.param is None:
            error.param = param
        raise


def from_url(
    url: Any, param: str, kind: Kind | None = None, name: str = "", mime: str = ""
) -> Attachment:
    """An http(s) URL (fetched later by the gateway) or a `data:` URL (decoded now)."""
    if not isinstance(url, str) or not url.strip():
        raise BadRequest("an image or file URL must be a non-empty string", param=param)
    with at(param):
        found = attachments.from_url(url, kind, name, mime)
    return _finished(found, param, kind)


def from_base64(
    data: Any, mime: Any, param: str, kind: Kind | None = None, name: str = "", field: str = ""
) -> Attachment:
    """Base64 data whose media type the client must name (in `field`)."""
    if not isinstance(mime, str) or not mime.strip():
        raise BadRequest(f"base64 data needs its media type (`{field}`)", param=param)
    return _decoded(data, mime.strip().lower(), param, kind, name)


def from_file_data(data: Any, param: str, name: str = "") -> Attachment:
    """`file_data`: a `data:` URL, or bare base64 typed by the file name or its first bytes."""
    if isinstance(data, str) and data.lstrip()[:5].lower() == "data:":
        return from_url(data, param, None, name, guess_mime(name))
    return _decoded(data, guess_mime(name), param, None, name)


def from_file_url(url: Any, param: str, name: str = "") -> Attachment:
    """A document (or image, by its name) at a URL."""
    if isinstance(url, str) and url.lstrip()[:5].lower() == "data:":
        return from_url(url, param, None, name)
    mime = guess_mime(name or _path_of(url))
    return from_url(url, param, attachments.kind_of(mime) if mime else "document", name, mime)


def openai_part(part: dict[str, Any], param: str) -> Attachment | None:
    """An OpenAI media part (Chat Completions or Responses form); None when not media."""
    kind = part.get("type")
    if kind not in OPENAI_MEDIA:
        return None
    if kind in ("image_url", "input_image"):
        return image_part(part, param)
    if kind == "file":
        return file_part(part.get("file"), param)
    if kind == "input_file":
        return file_part(part, param)
    raise BadRequest(f"`{kind}` parts are not supported: the upstream takes no audio", param=param)


def image_part(part: dict[str, Any], param: str) -> Attachment:
    """`image_url` as `{url, detail}` or as a plain string (`input_image` has the string)."""
    value = part.get("image_url")
    url = value.get("url") if isinstance(value, dict) else value
    if url is None and part.get("file_id") is not None:
        raise BadRequest(
            NO_FILE_IDS.format(field="`image_url` (http(s) or data: URL)"), param=param
        )
    return from_url(url, param, "image")


def file_part(spec: Any, param: str) -> Attachment:
    """`{file_data, filename}`, `{file_url}`; a bare `file_id` is refused."""
    if not isinstance(spec, dict):
        raise BadRequest("a `file` part needs a `file` object", param=param)
    name = spec.get("filename")
    name = name if isinstance(name, str) else ""
    if spec.get("file_data") is not None:
        return from_file_data(spec["file_data"], param, name)
    if spec.get("file_url") is not None:
        return from_file_url(spec["file_url"], param, name)
    if spec.get("file_id") is not None:
        raise BadRequest(
            NO_FILE_IDS.format(field="`file_data` (a data: URL or base64)"), param=param
        )
    raise BadRequest("a file part needs `file_data` or `file_url`", param=param)


def anthropic_block(block: dict[str, Any], param: str) -> Attachment | None:
    """An Anthropic `image` or `document` block (base64, url, text or content source)."""
    kind = block.get("type")
    if kind not in ("image", "document"):
        return None
    source = block.get("source")
    if not isinstance(source, dict):
        raise BadRequest(f"an `{kind}` block needs a source object", param=param)
    title = block.get("title")
    name = title if isinstance(title, str) else ""
    where = f"{param}.source"
    found = source.get("type")
    if found == "base64":
        media_type = source.get("media_type")
        return from_base64(source.get("data"), media_type, where, kind, name, "media_type")
    if found == "url" and kind == "image":
        return from_url(source.get("url"), where, "image", name)
    if found == "url":
        return from_file_url(source.get("url"), where, name)
    if kind == "document" and found in ("text", "content"):
        return _text_document(source, where, name)
    if found == "file":
        raise BadRequest(
            "`file` sources (the Files API) are not supported: send the contents as a base64, "
            "text or url source",
            param=where,
        )
    raise BadRequest(f"unknown {kind} source type {found!r}", param=where)


def gemini_part(inline: Any, file: Any, param: str) -> Attachment | None:
    """A Gemini `inline_data` {mime_type, data} or `file_data` {mime_type, file_uri} part
    (keys already in snake_case); None when the part has neither."""
    if inline is not None:
        blob = inline if isinstance(inline, dict) else {}
        name = _display_name(blob)
        where = f"{param}.inlineData"
        return from_base64(blob.get("data"), blob.get("mime_type"), where, None, name, "mimeType")
    if file is not None:
        spec = file if isinstance(file, dict) else {}
        mime = spec.get("mime_type")
        mime = mime.strip().lower() if isinstance(mime, str) else ""
        kind = attachments.kind_of(mime) if mime else None
        uri = spec.get("file_uri")
        if isinstance(uri, str) and urllib.parse.urlsplit(uri).hostname == GEMINI_FILES:
            raise BadRequest(
                "Gemini Files API URIs are not supported (this gateway keeps no uploaded files); "
                "send the contents as inlineData or a public http(s) fileUri",
                param=f"{param}.fileData",
            )
        return from_url(uri, f"{param}.fileData", kind, _display_name(spec), mime)
    return None


def guess_mime(name: str) -> str:
    return (mimetypes.guess_type(name, strict=False)[0] or "") if name else ""


def sniff(data: bytes) -> str:
    """The media type of a few common formats, from their first bytes ("" when unknown)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return next((mime for magic, mime in MAGIC if data.startswith(magic)), "")


def _decoded(data: Any, mime: str, param: str, kind: Kind | None, name: str) -> Attachment:
    if not isinstance(data, str) or not data.strip():
        raise BadRequest("base64 data must be a non-empty string", param=param)
    with at(param):
        found = attachments.from_base64("".join(data.split()), mime, kind, name)
    return _finished(found, param, kind)


def _finished(attachment: Attachment, param: str, kind: Kind | None) -> Attachment:
    """Refuse empty data; type untyped data by its first bytes."""
    if attachment.data is None:
        return attachment
    if not attachment.data:
        raise BadRequest("an image or file is empty", param=param)
    mime = "" if attachment.mime else sniff(attachment.data)
    if mime:
        attachment = dataclasses.replace(
            attachment, mime=mime, kind=kind or attachments.kind_of(mime)
        )
    return attachment


def _text_document(source: dict[str, Any], param: str, name: str) -> Attachment:
    """A `text` source (`data`) or a `content` source (a string or text blocks) as a document."""
    body = source.get("data") if source.get("type") == "text" else source.get("content")
    if isinstance(body, list):
        if not all(isinstance(b, dict) and isinstance(b.get("text"), str) for b in body):
            raise BadRequest("a `content` document source takes text blocks only", param=param)
        body = "\n".join(b["text"] for b in body)
    if not isinstance(body, str) or not body:
        raise BadRequest("a text document needs non-empty text", param=param)
    mime = source.get("media_type")
    return attachments.from_text(
        body, name, mime if isinstance(mime, str) and mime else "text/plain"
    )


def _display_name(spec: dict[str, Any]) -> str:
    name = spec.get("display_name")
    return name if isinstance(name, str) else ""


def _path_of(url: Any) -> str:
    return posixpath.basename(urllib.parse.urlsplit(url).path) if isinstance(url, str) else ""
