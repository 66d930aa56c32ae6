"""intl named errors: JSON failure bodies, in-stream error frames, whole-response HTTP errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

from qwen_free_api.testing import error_pages
from qwen_free_api.testing.intl_auth import failure
from qwen_free_api.testing.state import FakeState
from qwen_free_api.testing.stream import PlannedResponse, fixed_response

QUOTA_DETAILS = "You've reached the upper limit for today's usage."
COMPLETIONS_URL = "https://chat.qwen.ai/api/v2/chat/completions"

BODY_ERRORS = frozenset({"quota", "waf", "captcha", "bad_request"})
"""Plain JSON bodies (HTTP 200) when first; `data:` frames when mid-stream."""
FRAME_ERRORS = frozenset({"too_many_requests", "context_length"})
"""Always `data:` frames (alone when first)."""
RESPONSE_ERRORS = frozenset(
    {"http_401", "http_429", "http_500", "http_502", "http_503", "http_504_html", "html_waf"}
)
"""Only ever the whole response."""


def error_payload(name: str, response_id: str) -> dict[str, Any]:
    """The JSON of a body or frame error."""
    if name == "quota":
        data = {"code": "RateLimited", "details": QUOTA_DETAILS, "num": 3}
        return {"success": False, "request_id": str(uuid.uuid4()), "data": data}
    if name == "waf":
        url = error_pages.punish_url(COMPLETIONS_URL)
        return {"ret": ["FAIL_SYS_USER_VALIDATE", error_pages.WAF_BUSY], "data": {"url": url}}
    if name == "captcha":
        url = error_pages.punish_url(COMPLETIONS_URL, slider=True)
        return {"ret": ["FAIL_SYS_USER_VALIDATE"], "data": {"url": url}}
    if name == "bad_request":
        return {"success": False, "data": {"code": "Bad_Request", "details": "Internal error..."}}
    if name == "too_many_requests":
        error = {"code": "Too_Many_Requests", "details": "please slow down"}
        return {"error": error, "response_id": response_id}
    if name == "context_length":
        error = {"code": "ContextLengthExceeded", "details": "too long"}
        return {"error": error, "response_id": response_id}
    raise KeyError(name)


def _compact(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def body_error(state: FakeState, name: str, *, head_delay: float = 0.0) -> PlannedResponse:
    """One of BODY_ERRORS as the whole HTTP 200 application/json answer."""
    body = _compact(error_payload(name, ""))
    return fixed_response(state, body, content_type=error_pages.JSON_TYPE, head_delay=head_delay)


def response_error(state: FakeState, name: str, *, head_delay: float = 0.0) -> PlannedResponse:
    """One of RESPONSE_ERRORS."""
    html = error_pages.HTML_TYPE
    json_type = error_pages.JSON_TYPE
    unauthorized = _compact(failure("Unauthorized", "token is invalid or expired"))
    server_error = _compact(failure("InternalError", "Internal Server Error"))
    table: dict[str, tuple[int, str, bytes]] = {
        "http_401": (401, json_type, unauthorized),
        "http_429": (429, "text/plain; charset=utf-8", b""),
        "http_500": (500, json_type, server_error),
        "http_502": (502, html, error_pages.gateway_page(502).encode()),
        "http_503": (503, html, error_pages.gateway_page(503).encode()),
        "http_504_html": (504, html, error_pages.gateway_page(504).encode()),
        "html_waf": (200, html, error_pages.CAPTCHA_HTML.encode()),
    }
    status, content_type, body = table[name]
    return fixed_response(
        state, body, content_type=content_type, status_code=status, head_delay=head_delay
    )
