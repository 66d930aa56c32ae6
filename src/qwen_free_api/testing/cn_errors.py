"""cn named errors that replace the whole HTTP response (signature 403, WAF, empty body, 5xx)."""

from __future__ import annotations

import json
import time

from qwen_free_api.testing import error_pages
from qwen_free_api.testing.cn_frames import CONTENT_TYPE
from qwen_free_api.testing.state import FakeState
from qwen_free_api.testing.stream import PlannedResponse, fixed_response

SIGN_HARD_BODY = {"status": 1, "code": "EX015", "msg": "签名错误", "data": {}}
RESPONSE_ERRORS = frozenset(
    {
        "sign_hard",
        "waf_html",
        "waf_json",
        "empty",
        "http_500",
        "http_502",
        "http_503",
        "http_504_html",
    }
)


def _compact(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _waf_json() -> bytes:
    url = error_pages.punish_url("https://chat2.qianwen.com/api/v2/chat")
    return _compact({"ret": ["FAIL_SYS_USER_VALIDATE", error_pages.WAF_BUSY], "data": {"url": url}})


def _spring_500(path: str) -> bytes:
    millis = int(time.time() * 1000)
    body = {"timestamp": millis, "status": 500, "error": "Internal Server Error", "path": path}
    return _compact(body)


def error_response(
    state: FakeState, name: str, *, path: str = "/api/v2/chat", head_delay: float = 0.0
) -> PlannedResponse:
    """The response for one of RESPONSE_ERRORS."""
    html = error_pages.HTML_TYPE
    json_type = error_pages.JSON_TYPE
    table: dict[str, tuple[int, str, bytes]] = {
        "sign_hard": (403, json_type, _compact(SIGN_HARD_BODY)),
        "waf_html": (200, html, error_pages.CAPTCHA_HTML.encode()),
        "waf_json": (200, json_type, _waf_json()),
        "empty": (200, CONTENT_TYPE, b""),
        "http_500": (500, json_type, _spring_500(path)),
        "http_502": (502, html, error_pages.gateway_page(502).encode()),
        "http_503": (503, html, error_pages.gateway_page(503).encode()),
        "http_504_html": (504, html, error_pages.gateway_page(504).encode()),
    }
    status, content_type, body = table[name]
    return fixed_response(
        state, body, content_type=content_type, status_code=status, head_delay=head_delay
    )
