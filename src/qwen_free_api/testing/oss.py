"""Alibaba Cloud OSS pieces the fake needs: V1 header signatures, Date checks, XML errors.

String to sign (V1): `VERB\\n Content-MD5\\n Content-Type\\n Date\\n` + the `x-oss-*` headers
(names lower-case, values stripped, sorted by name, each `name:value\\n`) + `/bucket/object`.
Signature: base64(HMAC-SHA1(AccessKeySecret, string)); header `Authorization: OSS <id>:<sig>`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Mapping
from email.utils import formatdate, parsedate_to_datetime
from xml.sax.saxutils import escape

from starlette.responses import Response

MAX_SKEW_S = 15 * 60
XML_TYPE = "application/xml"


def content_md5(data: bytes) -> str:
    """The `Content-MD5` value of a body: base64 of the binary MD5."""
    return base64.b64encode(hashlib.md5(data).digest()).decode("ascii")


def http_date(when: float | None = None) -> str:
    """An RFC 1123 GMT date, as OSS wants in `Date` / `x-oss-date`."""
    return formatdate(time.time() if when is None else when, usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Seconds since the epoch of an HTTP date, or None when it does not parse."""
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo is not None else None


def string_to_sign(method: str, headers: Mapping[str, str], resource: str) -> str:
    """The V1 string to sign; `headers` have lower-case names."""
    oss = sorted(
        (name.strip(), value.strip())
        for name, value in headers.items()
        if name.startswith("x-oss-")
    )
    canonical = "".join(f"{name}:{value}\n" for name, value in oss)
    parts = [
        method.upper(),
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
    ]
    return "\n".join(parts) + "\n" + canonical + resource


def signature(secret: str, text: str) -> str:
    """base64(HMAC-SHA1(secret, text))."""
    digest = hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def parse_authorization(value: str) -> tuple[str, str] | None:
    """(AccessKeyId, signature) of `OSS <id>:<sig>`, else None."""
    scheme, _, rest = value.strip().partition(" ")
    key_id, colon, sig = rest.strip().partition(":")
    if scheme != "OSS" or not colon or not key_id or not sig:
        return None
    return key_id, sig


def xml_error(status: int, code: str, message: str, host: str) -> Response:
    """An OSS error document (`<Error><Code>…`) with its request id header."""
    request_id = uuid.uuid4().hex[:24].upper()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{escape(code)}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n  <HostId>{escape(host)}</HostId>\n</Error>\n"
    )
    return Response(
        body, status_code=status, media_type=XML_TYPE, headers={"x-oss-request-id": request_id}
    )


def put_ok(data: bytes) -> Response:
    """A successful PutObject: empty body, the ETag (upper-case MD5 hex) and a request id."""
    etag = '"' + hashlib.md5(data).hexdigest().upper() + '"'
    request_id = uuid.uuid4().hex[:24].upper()
    return Response(b"", headers={"etag": etag, "x-oss-request-id": request_id})


def date_problem(headers: Mapping[str, str], *, now: float) -> str | None:
    """Why the request's `Date` is unusable (missing, garbled, > 15 min off), else None."""
    raw = headers.get("date", "")
    if not raw:
        return "OSS authentication requires a valid Date."
    when = parse_http_date(raw)
    if when is None:
        return f"Invalid Date header: {raw}"
    if abs(when - now) > MAX_SKEW_S:
        return "The difference between the request time and the current time is too large."
    return None


def md5_problem(headers: Mapping[str, str], data: bytes) -> str | None:
    """Why a sent `Content-MD5` does not match the body, else None (also when none was sent)."""
    sent = headers.get("content-md5")
    if sent is None or sent == content_md5(data):
        return None
    return "The Content-MD5 you specified did not match what we received."
