"""Turn what the Qwen backends say when something goes wrong into typed gateway errors.

The backends report failures as HTTP statuses, as JSON or HTML bodies where SSE was expected,
and as error objects inside 200 streams. Each is classified here from its status or its
error code, right where the adapters read them; message text is only carried along.
"""

from __future__ import annotations

import json
from typing import Any

from qwen_free_api.errors import (
    Blocked,
    ContextTooLong,
    CredentialRejected,
    GatewayError,
    Overloaded,
    ProtocolError,
    RateLimited,
    SigningFailed,
    UpstreamError,
    UpstreamTimeout,
)

WAF_RETRY_AFTER = 60
RATE_RETRY_AFTER = 60
OVERLOAD_RETRY_AFTER = 30
NOT_LOGGED_IN = {"NOT_LOGIN", "LOGIN_TICKET_INVALID", "Unauthorized", "unauthorized", 401, "401"}
RATE_CODES = {"RateLimited", "Too_Many_Requests", "TooManyRequests"}
SIGN_CODES = {"EX015", 1001, "1001"}


def from_status(status: int, body: bytes, *, credential: str) -> GatewayError:
    """An error for a non-200 upstream answer (the body is a hint, the status decides)."""
    parsed = failure_in(parse_json(body), credential=credential) if body else None
    if status == 401:
        return CredentialRejected(f"the upstream rejected credential {credential}")
    if status == 403 and isinstance(parsed, SigningFailed):
        return parsed
    if status == 429:
        return RateLimited(
            "the upstream is rate limiting this account", retry_after=RATE_RETRY_AFTER
        )
    if status == 503:
        return Overloaded("the upstream is overloaded (HTTP 503)", retry_after=OVERLOAD_RETRY_AFTER)
    if status == 504:
        return UpstreamTimeout("the upstream gateway timed out (HTTP 504)")
    if parsed is not None:
        return parsed
    return UpstreamError(f"the upstream answered HTTP {status}")


def from_body(content_type: str, body: bytes, *, credential: str) -> GatewayError:
    """An error for a 200 answer that is not an event stream (JSON, HTML or nothing)."""
    if not body.strip():
        return ProtocolError("the upstream sent an empty answer")
    if "html" in content_type or body.lstrip().startswith(b"<"):
        return Blocked(
            "the upstream answered with a WAF/captcha page; try again later",
            retry_after=WAF_RETRY_AFTER,
        )
    parsed = failure_in(parse_json(body), credential=credential)
    return parsed or ProtocolError("the upstream sent JSON where a stream was expected")


def failure_in(frame: Any, *, credential: str) -> GatewayError | None:
    """The error a decoded JSON object reports, or None if it reports none."""
    if not isinstance(frame, dict):
        return None
    if "ret" in frame and "choices" not in frame:
        return Blocked(
            "the upstream's WAF challenged the request (" + _ret_text(frame["ret"]) + ")",
            retry_after=WAF_RETRY_AFTER,
        )
    code, details, extra = _code_of(frame)
    if code is None:
        return None
    return _classify(code, details, extra, credential)


def _classify(code: Any, details: str, extra: dict[str, Any], credential: str) -> GatewayError:
    if code in RATE_CODES:
        hours = extra.get("num")
        wait = int(hours * 3600) if isinstance(hours, int | float) and hours > 0 else None
        return RateLimited(
            f"the upstream refused: {details or code}",
            retry_after=wait or RATE_RETRY_AFTER,
            code="insufficient_quota" if code == "RateLimited" else "rate_limit_exceeded",
        )
    if code in NOT_LOGGED_IN:
        return CredentialRejected(f"the upstream rejected credential {credential} ({code})")
    if code in SIGN_CODES:
        return SigningFailed(f"the upstream refused the request signature ({code} {details})")
    if code == "ContextLengthExceeded":
        return ContextTooLong(f"the prompt is too long for the model: {details}")
    return UpstreamError(f"the upstream failed: {code} {details}".strip(), code=str(code))


def _code_of(frame: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """(code, details, extra) from any of the error envelopes the backends use."""
    error = frame.get("error")
    if isinstance(error, dict) and error.get("code"):
        return error["code"], str(error.get("details") or error.get("message") or ""), error
    data = frame.get("data")
    if frame.get("success") is False and isinstance(data, dict) and data.get("code"):
        return data["code"], str(data.get("details") or ""), data
    if frame.get("errorCode"):
        return frame["errorCode"], str(frame.get("errorMsg") or ""), frame
    error_code = frame.get("error_code")
    if error_code not in (None, 0, "0"):
        return error_code, str(frame.get("error_msg") or ""), frame
    if (
        isinstance(frame.get("code"), str)
        and frame.get("code") not in ("0", "")
        and (frame.get("success") is False or "details" in frame or "msg" in frame)
    ):
        return frame["code"], str(frame.get("details") or frame.get("msg") or ""), frame
    if frame.get("success") is False:
        return "failed", str(frame.get("msg") or frame.get("message") or ""), frame
    return None, "", frame


def _ret_text(ret: Any) -> str:
    return ";".join(str(item) for item in ret) if isinstance(ret, list) else str(ret)


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
