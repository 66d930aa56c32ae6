"""cn attachments (spec §8.5): images through the workspace upload flow, text documents inline.

For each image (the same bytes once per credential, cached):
1. `POST {workspace}/1/oss_token?<query>&req_id=` (signed, `workspace_api` scene)
   `{file_name, content_type, content_md5, size}` → a pre-signed PUT: `host`, `object`,
   `bucket`, `endpoint`, `authorization`, `oss_headers[{key, value}]`.
2. `PUT https://{host}/{object}?req_id=&biz_id=ai_qwen` with exactly those headers.
3. `POST {workspace}/1/oss/callback?<query>&req_id=` (signed likewise) → the material:
   `ws_gid`, `material_cdn_url` (its `auth_key` query kept).
The chat message then carries one `image/url` item per image before the text item.

No document upload flow is known for cn: text-like documents go into the prompt, any other
document is refused with a 400 that says so (never dropped silently).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qwen_free_api.attachments import check_limits, document_text, sent_attachments, text_like
from qwen_free_api.chat import Attachment, ChatRequest
from qwen_free_api.credentials import Credential
from qwen_free_api.errors import BadRequest, ProtocolError, UpstreamError
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.cn_sign import WORKSPACE_SCENE

if TYPE_CHECKING:
    from qwen_free_api.upstreams.cn import Cn

ANNOUNCED_TYPE = "application/octet-stream"  # what the web client announces and PUTs
ENTRY = "qwen_pc"
MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF87a": "image/gif",
    b"GIF89a": "image/gif",
}
EXTENSIONS = {"image/jpeg": "jpg", "image/jpg": "jpg", "image/svg+xml": "svg"}


@dataclass(frozen=True, slots=True)
class Media:
    """What a chat request's attachments become: `image/url` items and inline document text."""

    items: list[dict[str, Any]] = field(default_factory=list)
    documents: str = ""


def image_type(attachment: Attachment) -> tuple[str, str]:
    """(MIME type, file name) of an image; sniffed from the bytes when the type is not given."""
    data = attachment.data or b""
    mime = attachment.mime.lower().split(";")[0].strip()
    if not mime.startswith("image/"):
        mime = next((found for magic, found in MAGIC.items() if data.startswith(magic)), "")
        if not mime and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            mime = "image/webp"
        mime = mime or "image/png"
    ext = EXTENSIONS.get(mime) or mime.removeprefix("image/").replace("+", "_") or "png"
    name = attachment.name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        name = f"image.{ext}"
    elif "." not in name.strip("."):
        name = f"{name}.{ext}"
    return mime, name


def _extension(name: str) -> str:
    return name.rpartition(".")[2].lower()


def inline_documents(documents: list[Attachment]) -> str:
    """The documents' text as it leads the prompt; refuses a document cn cannot take."""
    for document in documents:
        if not text_like(document):
            mime = document.mime or "unknown-type"
            raise BadRequest(
                f"the cn backend cannot take {mime} documents"
                f"{f' ({document.name})' if document.name else ''}; "
                "send text, or use an intl credential"
            )
    return "\n\n".join(
        f"[document: {d.name or 'unnamed'}]\n{document_text(d)}\n[end of document]"
        for d in documents
    )


async def prepare(cn: Cn, chat: ChatRequest, credential: Credential) -> Media:
    """Check every attachment of the turns being sent, then upload the images (before the chat)."""
    found = sent_attachments(chat)
    if not found:
        return Media()
    images = [a for a in found if a.kind == "image"]
    documents = inline_documents([a for a in found if a.kind != "image"])
    check_limits(images, "cn")
    for image in images:
        if not image.data:
            raise BadRequest(f"an image ({image.name or 'unnamed'}) has no data")
    keys = [cn.uploads.key(credential, image.data or b"") for image in images]
    unique: dict[tuple[str, str], Attachment] = {}
    for key, image in zip(keys, images, strict=True):
        unique.setdefault(key, image)  # the same bytes twice: one upload, the first name
    done = await asyncio.gather(*(_cached(cn, credential, k, a) for k, a in unique.items()))
    infos = dict(zip(unique, done, strict=True))
    return Media([image_item(infos[key]) for key in keys], documents)


def image_item(info: dict[str, str]) -> dict[str, Any]:
    """The chat message item that shows one uploaded image to the model."""
    meta = {"resource_infos": [dict(info)]}
    return {"content": "", "mime_type": "image/url", "status": "complete", "meta_data": meta}


async def _cached(
    cn: Cn, credential: Credential, key: tuple[str, str], attachment: Attachment
) -> dict[str, str]:
    known = cn.uploads.get(key)
    if isinstance(known, dict):
        return known
    info = await upload(cn, credential, attachment)
    cn.uploads.put(key, info)
    return info


async def upload(cn: Cn, credential: Credential, attachment: Attachment) -> dict[str, str]:
    """Upload one image through the three steps; its `resource_infos` entry."""
    data = attachment.data or b""
    _, name = image_type(attachment)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    req_id = str(uuid.uuid4())
    asked = {"file_name": name, "content_type": ANNOUNCED_TYPE, "content_md5": md5}
    token = await workspace(cn, credential, "/1/oss_token", {**asked, "size": len(data)}, req_id)
    await _put(cn, credential, token, data, req_id)
    confirm = {
        "file_md5": md5,
        "file_name": name,
        "file_type": _extension(name).upper(),
        **{key: str(token[key]) for key in ("bucket", "endpoint", "object")},
        "entry": ENTRY,
    }
    material = await workspace(cn, credential, "/1/oss/callback", confirm, req_id)
    url = material.get("material_cdn_url") or material.get("material_url")
    if not url or not material.get("ws_gid"):
        raise ProtocolError("the cn upload callback named no material")
    return {
        "url": str(url),
        "id": str(material["ws_gid"]),
        "file_format": _extension(name),
        "file_name": name,
        "file_size": str(len(data)),
    }


async def workspace(
    cn: Cn, credential: Credential, path: str, body: dict[str, Any], req_id: str
) -> dict[str, Any]:
    """One signed workspace call; its `data` (failures raised as typed errors)."""
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    url = cn.settings.cn_workspace_base_url + path
    envelope = await cn.signed_json(
        credential, url, raw, scene=WORKSPACE_SCENE, extra=[("req_id", req_id)]
    )
    data = envelope.get("data")
    if envelope.get("code") not in (0, "0", None) or not isinstance(data, dict):
        message = envelope.get("msg") or envelope.get("message") or "no data"
        raise UpstreamError(f"the cn upload step {path} failed: {message}")
    return data


async def _put(
    cn: Cn, credential: Credential, token: dict[str, Any], data: bytes, req_id: str
) -> None:
    """The PUT the upload token pre-signed, with its headers exactly as issued."""
    obj, authorization = token.get("object"), token.get("authorization")
    root = cn.settings.cn_oss_base_url or (f"https://{token['host']}" if token.get("host") else "")
    if not obj or not authorization or not root:
        raise ProtocolError("the cn upload token is missing fields")
    headers = {"content-type": ANNOUNCED_TYPE}
    for pair in token.get("oss_headers") or []:
        if isinstance(pair, dict) and pair.get("key"):
            headers[str(pair["key"]).lower()] = str(pair.get("value", ""))
    headers.setdefault("content-md5", base64.b64encode(hashlib.md5(data).digest()).decode())
    headers["authorization"] = str(authorization)
    query = urllib.parse.urlencode({"req_id": req_id, "biz_id": "ai_qwen"})
    url = f"{root.rstrip('/')}/{urllib.parse.quote(str(obj))}?{query}"
    reply = await cn.http.request("PUT", url, headers=headers, body=data)
    if reply.status != 200:
        raise failures.from_status(reply.status, reply.body, credential=credential.masked)
