"""Chat requests that reference uploads: resolve every reference, or say why one is unknown.

intl (protocol §3.6): `messages[-1].files:[{type, id?, url?, …}]` (web client; `id` = file_id,
`url` = file_url — both must match one upload when both are given) and content items
`{type:"image", image:<file_url>}` (also video/audio/file) next to `{type:"text"}` items (Q2A).
A generated t2i image URL (with its `key`) is accepted too, as in the captured continuation.

cn (protocol §8.5): items `{"mime_type":"image/url" | "doc/url", "content":"",
"meta_data":{"resource_infos":[{"url", "id": ws_gid, "file_format", "file_name", "file_size"}]}}`
placed before a text item; `id` must be a ws_gid from a completed `oss/callback` of the same
ticket and `url` (or the item's `content`) its `material_cdn_url` or `material_url`.

The default echo answer then ends with one `[<kind> <sha256[:12]> <name>]` marker per attachment.
"""

from __future__ import annotations

import hashlib
from typing import Any

from qwen_free_api.testing.media_state import Blob, SeenAttachment
from qwen_free_api.testing.script import Script
from qwen_free_api.testing.state import FakeState

INTL_FILE_TYPES = frozenset({"image", "video", "audio", "file", "document"})
INTL_URL_ITEMS = frozenset({"image", "video", "audio", "file"})
CN_MEDIA = {"image/url": "image", "doc/url": "document"}


def _seen(kind: str, name: str, data: bytes, ref: str, url: str) -> SeenAttachment:
    digest = hashlib.sha256(data).hexdigest()
    return SeenAttachment(kind, name, digest, len(data), ref, url)


def with_markers(text: str, seen: list[SeenAttachment], script: Script) -> str:
    """The default answer followed by the attachment markers (a scripted answer is kept as is)."""
    if script.answer is not None or not seen:
        return text
    return text + " " + " ".join(item.marker for item in seen)


def _intl_refs(message: dict[str, Any]) -> list[tuple[str, str, str]] | str:
    """(kind, file id or "", url or "") of every reference in the message, else the problem."""
    refs: list[tuple[str, str, str]] = []
    files = message.get("files")
    if files is not None and not isinstance(files, list):
        return "files must be a list"
    for entry in files or []:
        if not isinstance(entry, dict) or entry.get("type") not in INTL_FILE_TYPES:
            return f"unsupported files[] entry: {entry!r}"
        ident, url = entry.get("id") or "", entry.get("url") or ""
        if not isinstance(ident, str) or not isinstance(url, str) or not (ident or url):
            return "a files[] entry needs a file id or a url"
        refs.append((str(entry["type"]), ident, url))
    content = message.get("content")
    for item in content if isinstance(content, list) else []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind in INTL_URL_ITEMS:
            url = item.get(kind)
            if not isinstance(url, str) or not url:
                return f"a {kind} item needs its URL in {kind!r}"
            refs.append((str(kind), "", url))
    return refs


def _generated(state: FakeState, url: str, owner: str, key: str) -> Blob | None:
    with state.locked():
        found = [b for b in state.media.blobs.values() if b.url == url and b.query_key == key]
    return found[0] if found and found[0].owner == owner else None


def resolve_intl(
    state: FakeState, owner: str, message: dict[str, Any]
) -> list[SeenAttachment] | str:
    """The attachments of an intl user message, or the reason the request must fail."""
    refs = _intl_refs(message)
    if isinstance(refs, str):
        return refs
    seen: list[SeenAttachment] = []
    for _kind, ident, url in refs:
        with state.locked():
            files = list(state.media.intl_files.values())
        mine = [f for f in files if f.owner == owner]
        match = [f for f in mine if f.file_id == ident] if ident else []
        if not ident:
            match = [f for f in mine if f.file_url == url]
        if match and (not url or match[0].file_url == url):
            f = match[0]
            seen.append(_seen(f.filetype, f.filename, f.data, f.file_id, f.file_url))
            continue
        blob = None if ident else _generated(state, url, owner, "key")
        if blob is None:
            return f"File not found: {ident or url}"
        seen.append(_seen("image", blob.name, blob.data, blob.path, blob.url))
    return seen


def _cn_item(state: FakeState, ticket: str, item: dict[str, Any]) -> list[SeenAttachment] | str:
    meta = item.get("meta_data")
    infos = meta.get("resource_infos") if isinstance(meta, dict) else None
    if not isinstance(infos, list) or not infos:
        return f"{item.get('mime_type')} item without meta_data.resource_infos"
    seen: list[SeenAttachment] = []
    for info in infos:
        if not isinstance(info, dict):
            return "resource_infos entries must be objects"
        ident = str(info.get("id") or "")
        url = info.get("url") or item.get("content") or ""
        with state.locked():
            material = state.media.materials.get(ident)
        if material is None or material.ticket != ticket:
            return f"资源不存在: {ident or '(no id)'}"
        if url not in material.urls:
            return f"资源地址与 {ident} 不符"
        name = info.get("file_name")
        if name is not None and name != material.file_name:
            return f"file_name {name!r} does not match {ident}"
        kind = CN_MEDIA[str(item["mime_type"])]
        seen.append(_seen(kind, material.file_name, material.data, ident, str(url)))
    return seen


def resolve_cn(state: FakeState, ticket: str, body: dict[str, Any]) -> list[SeenAttachment] | str:
    """The attachments of a cn chat body, or the reason the request must fail."""
    items = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    texts = [i for i, m in enumerate(items) if m.get("mime_type", "text/plain") == "text/plain"]
    last_text = texts[-1] if texts else -1
    seen: list[SeenAttachment] = []
    for index, item in enumerate(items):
        if item.get("mime_type") not in CN_MEDIA:
            continue
        if index > last_text:
            return "参数错误: 附件须放在文本之前"
        found = _cn_item(state, ticket, item)
        if isinstance(found, str):
            return found
        seen.extend(found)
    return seen
