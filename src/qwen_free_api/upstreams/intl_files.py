"""intl uploads (spec §3.6): an STS grant, a signed OSS PUT, and the chat's `files` entry.

1. `POST /api/v2/files/getstsToken {filename, filesize, filetype}` → temporary OSS credentials
   and where to put the object (`bucketname`, `region`, `file_path`, `file_url`, `file_id`).
2. `PUT` the bytes to the object, signed with OSS's V1 header signature using those
   credentials (`x-oss-security-token` carries the STS token).
3. The chat message lists the upload in `files` by its id and URL.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

from qwen_free_api.chat import Attachment
from qwen_free_api.credentials import Credential
from qwen_free_api.errors import ProtocolError
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.http import Http

MAGIC = {
    b"\x89PNG": ("image/png", "png"),
    b"\xff\xd8\xff": ("image/jpeg", "jpg"),
    b"GIF8": ("image/gif", "gif"),
    b"RIFF": ("image/webp", "webp"),
    b"%PDF": ("application/pdf", "pdf"),
}


def described(attachment: Attachment) -> tuple[str, str]:
    """The attachment's MIME type and a file name, sniffed from its bytes when not given."""
    mime, name = attachment.mime, attachment.name
    data = attachment.data or b""
    sniffed = next((found for magic, found in MAGIC.items() if data.startswith(magic)), None)
    if not mime or mime == "application/octet-stream":
        mime = sniffed[0] if sniffed else "application/octet-stream"
    if not name or "." not in name:
        extension = sniffed[1] if sniffed else (mime.split("/")[-1] or "bin")
        name = f"{name or attachment.kind}.{extension}"
    return mime, name


def oss_signature(secret: str, method: str, headers: Mapping[str, str], resource: str) -> str:
    """OSS V1: base64(HMAC-SHA1(secret, verb, md5, type, date, x-oss-* headers, resource))."""
    lowered = {k.lower(): v.strip() for k, v in headers.items()}
    oss = "".join(f"{k}:{v}\n" for k, v in sorted(lowered.items()) if k.startswith("x-oss-"))
    text = "\n".join(
        [
            method,
            lowered.get("content-md5", ""),
            lowered.get("content-type", ""),
            lowered.get("date", ""),
        ]
    )
    digest = hmac.new(secret.encode(), f"{text}\n{oss}{resource}".encode(), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


async def upload(
    http: Http,
    base: str,
    oss_base: str,
    headers: dict[str, str],
    credential: Credential,
    attachment: Attachment,
) -> dict[str, Any]:
    """Upload one attachment; the `files` entry that references it in a chat message."""
    data = attachment.data or b""
    mime, name = described(attachment)
    kind = "image" if attachment.kind == "image" else "document"
    grant = await _grant(http, base, headers, credential, name, len(data), kind)
    bucket, path = str(grant["bucketname"]), str(grant["file_path"])
    root = (
        f"{oss_base}/{bucket}" if oss_base else f"https://{bucket}.{grant['region']}.aliyuncs.com"
    )
    put_headers = {
        "Content-Type": mime,
        "Content-MD5": base64.b64encode(hashlib.md5(data).digest()).decode(),
        "Date": formatdate(usegmt=True),
        "x-oss-security-token": str(grant["security_token"]),
    }
    signature = oss_signature(
        str(grant["access_key_secret"]), "PUT", put_headers, f"/{bucket}/{path}"
    )
    put_headers["Authorization"] = f"OSS {grant['access_key_id']}:{signature}"
    url = f"{root}/{urllib.parse.quote(path)}"
    reply = await http.request("PUT", url, headers=put_headers, body=data)
    if reply.status != 200:
        raise failures.from_status(reply.status, reply.body, credential=credential.masked)
    return {
        "type": kind,
        "file": {"id": grant["file_id"], "filename": name},
        "id": grant["file_id"],
        "url": grant["file_url"],
        "name": name,
        "size": len(data),
        "file_type": mime,
        "file_class": "vision" if kind == "image" else "document",
        "showType": "image" if kind == "image" else "file",
        "status": "uploaded",
    }


async def _grant(
    http: Http,
    base: str,
    headers: dict[str, str],
    credential: Credential,
    name: str,
    size: int,
    kind: str,
) -> dict[str, Any]:
    body = json.dumps({"filename": name, "filesize": size, "filetype": kind}).encode()
    reply = await http.request(
        "POST", f"{base}/api/v2/files/getstsToken", headers=headers, body=body
    )
    if reply.status != 200:
        raise failures.from_status(reply.status, reply.body, credential=credential.masked)
    found = failures.parse_json(reply.body)
    error = failures.failure_in(found, credential=credential.masked)
    if error is not None:
        raise error
    grant = found.get("data", found) if isinstance(found, dict) else None
    needed = ("access_key_id", "access_key_secret", "security_token", "file_path", "bucketname")
    if not isinstance(grant, dict) or not all(grant.get(key) for key in needed):
        raise ProtocolError("the intl upload grant is missing fields")
    return grant
