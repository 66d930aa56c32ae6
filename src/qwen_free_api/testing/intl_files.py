"""intl uploads (protocol §3.6): `getstsToken`, then an STS-signed OSS PUT of exactly that object.

`POST /api/v{1,2}/files/getstsToken {"filename","filesize","filetype"}` (Bearer JWT) issues
single-use STS credentials for one object `file_path` in bucket `qwen-chat-files`, region
`oss-ap-southeast-1`. v2 answers inside the success envelope (`data`), v1 flat, unless
`media.sts_shape` says otherwise. The fake serves the OSS bucket path-style:
`PUT /{bucket}/{file_path}` (the server maps `https://{bucket}.{region}.aliyuncs.com` to
`{QFA_INTL_OSS_BASE_URL}/{bucket}`) and checks the V1 signature made with the issued secret,
`x-oss-security-token`, `Date`, `Content-MD5` (if sent) and the announced size.
"""

from __future__ import annotations

import hmac
import json
import secrets
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing import oss
from qwen_free_api.testing.intl_auth import envelope, failure, request_claims, unauthorized
from qwen_free_api.testing.media_state import IntlFile, StsGrant
from qwen_free_api.testing.state import FakeState

BUCKET = "qwen-chat-files"
REGION = "oss-ap-southeast-1"
HOST = f"{BUCKET}.{REGION}.aliyuncs.com"
FILETYPES = frozenset({"image", "video", "audio", "document", "file"})
MAX_FILESIZE = 100 * 1024 * 1024


def _sts_fields(body: Any) -> tuple[str, int, str] | str:
    """(filename, filesize, filetype) of a getstsToken body, else what is wrong with it."""
    if not isinstance(body, dict):
        return "body is not a JSON object"
    filename, filesize, filetype = body.get("filename"), body.get("filesize"), body.get("filetype")
    if not isinstance(filename, str) or not filename.strip():
        return "filename is required"
    if isinstance(filesize, bool) or not isinstance(filesize, int) or filesize <= 0:
        return "filesize must be a positive integer"
    if filesize > MAX_FILESIZE:
        return "file is too large"
    if filetype not in FILETYPES:
        return f"filetype must be one of {sorted(FILETYPES)}"
    return filename, filesize, str(filetype)


class IntlFiles:
    """Issues STS grants and accepts the PUT each grant allows (once)."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The two getstsToken paths (the PUT is dispatched by the fake's OSS route)."""
        return [
            Route("/api/v1/files/getstsToken", self.sts_v1, methods=["POST"]),
            Route("/api/v2/files/getstsToken", self.sts_v2, methods=["POST"]),
        ]

    async def sts_v1(self, request: Request) -> Response:
        """The older path (Q2A)."""
        return await self._sts(request, wrapped=self.state.media.sts_shape == "wrapped")

    async def sts_v2(self, request: Request) -> Response:
        """The current path (capture 2026-08-25)."""
        return await self._sts(request, wrapped=self.state.media.sts_shape != "flat")

    async def _sts(self, request: Request, *, wrapped: bool) -> Response:
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        if self.state.media.sts_forbidden:
            return JSONResponse(failure("Forbidden", "no permission to upload"), status_code=403)
        try:
            fields = _sts_fields(json.loads(await request.body() or b"null"))
        except ValueError:
            fields = "body is not JSON"
        if isinstance(fields, str):
            self.state.note_media_refusal("intl getstsToken", fields)
            return JSONResponse(failure("Bad_Request", fields), status_code=400)
        grant = self._grant(str(claims.get("id")), *fields)
        data = {
            "access_key_id": grant.access_key_id,
            "access_key_secret": grant.secret,
            "security_token": grant.security_token,
            "file_url": grant.file_url,
            "file_path": grant.file_path,
            "file_id": grant.file_id,
            "bucketname": grant.bucket,
            "region": REGION,
            "endpoint": f"https://{REGION}.aliyuncs.com",
        }
        return JSONResponse(envelope(data) if wrapped else data)

    def _grant(self, owner: str, filename: str, filesize: int, filetype: str) -> StsGrant:
        file_id = str(uuid.uuid4())
        file_path = f"{owner}/{file_id}_{filename}"
        expires = time.time() + self.state.media.sts_ttl
        query = f"Expires={int(expires) + 86400}&OSSAccessKeyId=LTAI5tFakeReadKey&Signature="
        query += secrets.token_urlsafe(20)
        grant = StsGrant(
            access_key_id="STS.NT" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"),
            secret=secrets.token_urlsafe(30),
            security_token="CAIS" + secrets.token_urlsafe(180),
            bucket=BUCKET,
            file_path=file_path,
            file_id=file_id,
            file_url=f"https://{HOST}/{file_path}?{query}",
            filename=filename,
            filesize=filesize,
            filetype=filetype,
            owner=owner,
            expires=expires,
        )
        with self.state.locked():
            self.state.media.grants[grant.access_key_id] = grant
        self.state.changed()
        return grant

    def _refuse(self, status: int, code: str, message: str) -> Response:
        self.state.note_media_refusal("intl oss put", f"{code}: {message}")
        return oss.xml_error(status, code, message, HOST)

    async def put(self, request: Request, bucket: str, key: str) -> Response:
        """`PUT /{bucket}/{key}`: store the object when every check passes."""
        data = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        parsed = oss.parse_authorization(headers.get("authorization", ""))
        if parsed is None:
            return self._refuse(403, "AccessDenied", "Authorization header is missing or invalid.")
        with self.state.locked():
            grant = self.state.media.grants.get(parsed[0])
        if grant is None:
            return self._refuse(403, "InvalidAccessKeyId", "The OSS Access Key Id does not exist.")
        if headers.get("x-oss-security-token") != grant.security_token:
            return self._refuse(403, "InvalidAccessKeyId", "The security token is invalid.")
        if time.time() > grant.expires or grant.used:
            return self._refuse(403, "SecurityTokenExpired", "The security token has expired.")
        problem = oss.date_problem(headers, now=time.time())
        if problem is not None:
            return self._refuse(403, "AccessDenied", problem)
        resource = f"/{bucket}/{key}"
        expected = oss.signature(grant.secret, oss.string_to_sign("PUT", headers, resource))
        if not hmac.compare_digest(expected, parsed[1]):
            return self._refuse(
                403, "SignatureDoesNotMatch", "The request signature we calculated does not match."
            )
        if bucket != grant.bucket or key != grant.file_path:
            return self._refuse(403, "AccessDenied", f"The grant does not allow {resource}.")
        problem = oss.md5_problem(headers, data)
        if problem is not None:
            return self._refuse(400, "InvalidDigest", problem)
        if len(data) != grant.filesize:
            message = f"Body has {len(data)} bytes; getstsToken announced {grant.filesize}."
            return self._refuse(403, "AccessDenied", message)
        upload = IntlFile(
            grant.file_id, grant.file_url, grant.filename, grant.filetype, grant.owner, data
        )
        with self.state.locked():
            grant.used = True
            self.state.media.intl_files[grant.file_id] = upload
        self.state.changed()
        return oss.put_ok(data)
