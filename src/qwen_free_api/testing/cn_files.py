"""cn uploads (protocol §8.5): workspace `oss_token`, the pre-signed OSS PUT, `oss/callback`.

1. `POST /1/oss_token?<query incl. req_id>` (workspace host; signed with the `workspace_api`
   scene when sign_mode is not off) `{"file_name","content_type","content_md5","size"}` →
   `{"code":0,"msg":"success","success":true,"data":{host, object, bucket, endpoint,
   authorization, oss_headers:[{key,value}…]}}`.
2. `PUT /{object}` (the server maps `https://{host}` to `QFA_CN_OSS_BASE_URL`): the bytes with
   `Content-Type` as announced, `authorization` and every `oss_headers` pair exactly as issued;
   `Content-MD5` and size must match the body. Once only (`x-oss-forbid-overwrite`: 409).
3. `POST /1/oss/callback?<query incl. req_id>` (signed like 1)
   `{"file_md5","file_name","file_type","bucket","endpoint","object","entry"}` → `data:{file_name,
   file_type, file_size, ws_gid, material_cdn_url (?auth_key=…), material_url}`.
Workspace failures: HTTP 200 `{"code":<non-zero>,"msg":…,"success":false,"data":null}`; signature
refusals: `sign_mode` hard → HTTP 403 EX015 body, soft/canned → the same body with HTTP 200.
"""

from __future__ import annotations

import binascii
import json
import mimetypes
import secrets
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing import oss
from qwen_free_api.testing.cn_errors import SIGN_HARD_BODY
from qwen_free_api.testing.cn_security import SecurityEndpoints
from qwen_free_api.testing.cn_tickets import TICKET_COOKIE, ticket_valid
from qwen_free_api.testing.images import register_cdn
from qwen_free_api.testing.media_state import CnMaterial, CnSlot
from qwen_free_api.testing.signing import verify_signature
from qwen_free_api.testing.state import FakeState

WORKSPACE_SCENE = "workspace_api"
BUCKET = "workspace-zb-provide"
ENDPOINT = "oss-cn-zhangjiakou.aliyuncs.com"
HOST = f"{BUCKET}.{ENDPOINT}"
MAX_SIZE = 10 * 1024 * 1024
NOT_LOGIN = {"success": False, "errorCode": "NOT_LOGIN", "errorMsg": "未登录"}
_SIGNING_SECRET = "fake-workspace-oss-secret"


def workspace_ok(data: Any) -> Response:
    """The workspace success envelope."""
    return JSONResponse({"code": 0, "msg": "success", "success": True, "data": data})


def workspace_error(code: int, msg: str) -> Response:
    """A workspace failure (HTTP 200, non-zero code)."""
    return JSONResponse({"code": code, "msg": msg, "success": False, "data": None})


def signature_refusal(
    state: FakeState, security: SecurityEndpoints, request: Request, raw: bytes, scene: str
) -> Response | None:
    """None when the cn signature of this JSON call is acceptable (or unchecked), else the answer.

    The scene's one-time salt is spent on success, so a poll must be re-signed every time.
    """
    if state.sign_mode == "off":
        return None
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = parse_qsl(request.url.query, keep_blank_values=True)
    verdict = verify_signature(headers, query, raw, now_ms=int(time.time() * 1000))
    reason = security.spend_salt(headers, scene) if verdict.ok else verdict.reason
    if reason is None:
        return None
    state.note_sign_failure(reason)
    return JSONResponse(SIGN_HARD_BODY, status_code=403 if state.sign_mode == "hard" else 200)


def _md5_text(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return len(binascii.a2b_base64(value)) == 16
    except binascii.Error:
        return False


def _token_fields(body: Any) -> dict[str, Any] | str:
    if not isinstance(body, dict):
        return "body is not a JSON object"
    name, size = body.get("file_name"), body.get("size")
    if not isinstance(name, str) or not name.strip():
        return "file_name is required"
    if not isinstance(body.get("content_type"), str) or not body["content_type"]:
        return "content_type is required"
    if not _md5_text(body.get("content_md5")):
        return "content_md5 must be base64(md5(bytes))"
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        return "size must be a positive integer"
    if size > MAX_SIZE:
        return "文件过大"
    return body


def extension(file_name: str) -> str:
    """The lower-case extension of a file name ("" when none)."""
    stem, dot, ext = file_name.rpartition(".")
    return ext.lower() if dot and stem else ""


class CnFiles:
    """The workspace upload host and the cn OSS bucket."""

    def __init__(self, state: FakeState, security: SecurityEndpoints) -> None:
        self.state = state
        self.security = security

    def routes(self) -> list[Route]:
        """The workspace paths (the PUT is dispatched by the fake's OSS route)."""
        return [
            Route("/1/oss_token", self.oss_token, methods=["POST"]),
            Route("/1/oss/callback", self.callback, methods=["POST"]),
        ]

    async def _gate(self, request: Request) -> tuple[str, Any] | Response:
        """(ticket, parsed body) of a workspace call, or the refusal."""
        raw = await request.body()
        refusal = signature_refusal(self.state, self.security, request, raw, WORKSPACE_SCENE)
        if refusal is not None:
            return refusal
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        if not request.query_params.get("req_id"):
            return workspace_error(400, "req_id is required")
        try:
            return str(ticket), json.loads(raw or b"null")
        except ValueError:
            return workspace_error(400, "body is not JSON")

    def _fail(self, step: str, code: int, msg: str) -> Response:
        self.state.note_media_refusal(step, msg)
        return workspace_error(code, msg)

    async def oss_token(self, request: Request) -> Response:
        """A pre-signed PUT for one new object."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        ticket, body = gate
        fields = _token_fields(body)
        if isinstance(fields, str):
            return self._fail("cn oss_token", 400, fields)
        name = str(fields["file_name"])
        key = f"qwen_pc/{time.strftime('%Y%m%d')}/{uuid.uuid4().hex}/{name}"
        headers = {
            "content-md5": str(fields["content_md5"]),
            "content-type": str(fields["content_type"]),
            "x-oss-date": oss.http_date(),
            "x-oss-forbid-overwrite": "true",
            "x-oss-security-token": "CAIS" + secrets.token_urlsafe(120),
        }
        text = oss.string_to_sign("PUT", headers, f"/{BUCKET}/{key}")
        authorization = f"OSS STS.NTfakeworkspace:{oss.signature(_SIGNING_SECRET, text)}"
        oss_headers = [{"key": "Content-MD5", "value": headers["content-md5"]}]
        oss_headers += [{"key": k, "value": v} for k, v in headers.items() if k.startswith("x-oss")]
        slot = CnSlot(
            ticket=ticket,
            object=key,
            bucket=BUCKET,
            endpoint=ENDPOINT,
            host=HOST,
            file_name=name,
            content_type=headers["content-type"],
            content_md5=headers["content-md5"],
            size=int(fields["size"]),
            authorization=authorization,
            oss_headers=oss_headers,
            expires=time.time() + self.state.media.oss_token_ttl,
        )
        with self.state.locked():
            self.state.media.cn_slots[key] = slot
        self.state.changed()
        data = {"host": HOST, "object": key, "bucket": BUCKET, "endpoint": ENDPOINT}
        return workspace_ok({**data, "authorization": authorization, "oss_headers": oss_headers})

    def _refuse_put(self, status: int, code: str, message: str) -> Response:
        self.state.note_media_refusal("cn oss put", f"{code}: {message}")
        return oss.xml_error(status, code, message, HOST)

    async def put(self, request: Request, key: str) -> Response:
        """`PUT /{object}` with the headers oss_token issued."""
        data = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self.state.locked():
            slot = self.state.media.cn_slots.get(key)
        if slot is None:
            return self._refuse_put(403, "AccessDenied", f"No oss_token was issued for {key}.")
        mismatch = "The request signature we calculated does not match."
        if headers.get("authorization") != slot.authorization:
            return self._refuse_put(403, "SignatureDoesNotMatch", f"{mismatch} (authorization)")
        for pair in slot.oss_headers:
            if headers.get(pair["key"].lower()) != pair["value"]:
                return self._refuse_put(403, "SignatureDoesNotMatch", f"{mismatch} ({pair['key']})")
        if headers.get("content-type") != slot.content_type:
            return self._refuse_put(403, "SignatureDoesNotMatch", f"{mismatch} (Content-Type)")
        if time.time() > slot.expires:
            return self._refuse_put(403, "AccessDenied", "Request has expired.")
        problem = oss.md5_problem(headers, data)
        if problem is not None:
            return self._refuse_put(400, "InvalidDigest", problem)
        if len(data) != slot.size:
            message = f"Body has {len(data)} bytes; oss_token announced {slot.size}."
            return self._refuse_put(403, "AccessDenied", message)
        with self.state.locked():
            taken = slot.data is not None
            if not taken:
                slot.data = data
        if taken:
            return self._refuse_put(409, "FileAlreadyExists", "The object already exists.")
        self.state.changed()
        return oss.put_ok(data)

    async def callback(self, request: Request) -> Response:
        """Confirm an uploaded object; the answer names its material (ws_gid) and CDN URL."""
        gate = await self._gate(request)
        if isinstance(gate, Response):
            return gate
        ticket, body = gate
        if not isinstance(body, dict):
            return self._fail("cn oss/callback", 400, "body is not a JSON object")
        with self.state.locked():
            slot = self.state.media.cn_slots.get(str(body.get("object")))
        if slot is None or slot.ticket != ticket:
            return self._fail("cn oss/callback", 404, "object not found")
        if slot.data is None:
            return self._fail("cn oss/callback", 409, "文件未上传 (callback before the PUT)")
        problem = self._callback_problem(slot, body)
        if problem is not None:
            return self._fail("cn oss/callback", 400, problem)
        material = self._material(request, slot, slot.data)
        url, oss_url = material.urls
        data = {
            "file_name": slot.file_name,
            "file_type": material.file_type,
            "file_size": slot.size,
            "ws_gid": material.ws_gid,
            "material_cdn_url": url,
            "material_url": oss_url,
        }
        return workspace_ok(data)

    @staticmethod
    def _callback_problem(slot: CnSlot, body: dict[str, Any]) -> str | None:
        expected = {
            "file_md5": slot.content_md5,
            "file_name": slot.file_name,
            "bucket": slot.bucket,
            "endpoint": slot.endpoint,
        }
        for name, value in expected.items():
            if body.get(name) != value:
                return f"{name} does not match the uploaded object"
        file_type = body.get("file_type")
        ext = extension(slot.file_name)
        if not isinstance(file_type, str) or not file_type:
            return "file_type is required"
        if ext and file_type.lower() != ext:
            return f"file_type {file_type!r} does not match {slot.file_name!r}"
        if not isinstance(body.get("entry"), str) or not body["entry"]:
            return "entry is required"
        return None

    def _material(self, request: Request, slot: CnSlot, data: bytes) -> CnMaterial:
        with self.state.locked():
            known = self.state.media.materials.get(slot.ws_gid or "")
        if known is not None:
            return known
        ext = extension(slot.file_name) or "bin"
        blob = register_cdn(
            self.state,
            str(request.base_url),
            ext,
            data,
            content_type=mimetypes.guess_type(slot.file_name)[0] or slot.content_type,
            owner=slot.ticket,
            name=slot.file_name,
        )
        material = CnMaterial(
            ws_gid=uuid.uuid4().hex,
            ticket=slot.ticket,
            file_name=slot.file_name,
            file_type=ext.upper(),
            urls=(blob.url, f"https://{HOST}/{quote(slot.object)}"),
            data=data,
        )
        with self.state.locked():
            slot.ws_gid = material.ws_gid
            self.state.media.materials[material.ws_gid] = material
        self.state.changed()
        return material
