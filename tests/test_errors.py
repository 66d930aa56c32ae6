"""Every upstream failure becomes the right OpenAI error with a true HTTP status: before the
first byte as a status, after it as an error chunk then [DONE]; never as assistant text."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from qwen_free_api.credentials import Dialect, mask
from qwen_free_api.testing import CANNED_REFUSAL, FakeUpstream, Script

from support import CN_TICKET, INTL_JWT, body, chat, stream_chat

# (dialect, fake error, HTTP status, OpenAI error type, Retry-After)
BEFORE_FIRST_BYTE = [
    ("intl", "quota", 429, "insufficient_quota", "10800"),
    ("intl", "waf", 503, "service_unavailable", "60"),
    ("intl", "captcha", 503, "service_unavailable", "60"),
    ("intl", "html_waf", 503, "service_unavailable", "60"),
    ("intl", "http_401", 401, "authentication_error", None),
    ("intl", "http_429", 429, "rate_limit_error", "60"),
    ("intl", "http_500", 502, "upstream_error", None),
    ("intl", "http_502", 502, "upstream_error", None),
    ("intl", "http_503", 503, "service_unavailable", "30"),
    ("intl", "http_504_html", 504, "timeout", None),
    ("intl", "bad_request", 502, "upstream_error", None),
    ("intl", "too_many_requests", 429, "rate_limit_error", "60"),
    ("intl", "context_length", 400, "invalid_request_error", None),
    ("cn", "not_login", 401, "authentication_error", None),
    ("cn", "waf_html", 503, "service_unavailable", "60"),
    ("cn", "waf_json", 503, "service_unavailable", "60"),
    ("cn", "empty", 502, "upstream_error", None),
    ("cn", "http_500", 502, "upstream_error", None),
    ("cn", "http_502", 502, "upstream_error", None),
    ("cn", "http_503", 503, "service_unavailable", "30"),
    ("cn", "http_504_html", 504, "timeout", None),
]


def _check_error(data: dict[str, Any], kind: str) -> dict[str, Any]:
    error: dict[str, Any] = data["error"]
    assert set(error) == {"message", "type", "code", "param"}
    assert error["type"] == kind
    assert error["message"]
    return error


@pytest.mark.parametrize(("dialect", "name", "status", "kind", "retry"), BEFORE_FIRST_BYTE)
@pytest.mark.parametrize("stream", [True, False])
async def test_errors_before_the_first_byte_are_statuses(
    client: httpx.AsyncClient,
    fake: FakeUpstream,
    dialect: Dialect,
    name: str,
    status: int,
    kind: str,
    retry: str | None,
    stream: bool,
) -> None:
    fake.enqueue(dialect, Script(error=name))
    if stream:
        result = await stream_chat(client, dialect, body("x"))
        got_status, headers, data = (
            result.status,
            result.headers,
            httpx.Response(200, text=result.raw).json(),
        )
    else:
        response = await chat(client, dialect, body("x"))
        got_status, headers, data = response.status_code, dict(response.headers), response.json()
    assert got_status == status
    assert headers.get("retry-after") == retry
    error = _check_error(data, kind)
    if status == 401:
        secret = CN_TICKET if dialect == "cn" else INTL_JWT
        assert mask(secret) in error["message"] and secret not in error["message"]


# (dialect, fake error, OpenAI error type)
AFTER_FIRST_BYTE = [
    ("intl", "quota", "insufficient_quota"),
    ("intl", "waf", "service_unavailable"),
    ("intl", "too_many_requests", "rate_limit_error"),
    ("intl", "context_length", "invalid_request_error"),
    ("cn", "error_frame", "upstream_error"),
    ("cn", "sign_soft", "upstream_error"),
]


@pytest.mark.parametrize(("dialect", "name", "kind"), AFTER_FIRST_BYTE)
async def test_errors_after_the_first_byte_are_in_band(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect, name: str, kind: str
) -> None:
    fake.enqueue(dialect, Script(answer="partial answer here", error=name, error_after=2))
    result = await stream_chat(client, dialect, body("x"))
    assert result.status == 200
    assert result.content and "partial answer here".startswith(result.content)
    [error] = result.errors
    assert error["type"] == kind
    assert result.finish_reasons == []
    assert result.done
    assert name not in result.content and "error" not in result.content.lower()


async def test_mid_stream_quota_without_streaming_is_a_429(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="partial answer", error="quota", error_after=2))
    response = await chat(client, "intl", body("x"))
    assert response.status_code == 429
    assert response.headers["retry-after"] == "10800"


@pytest.mark.parametrize("dialect", ["cn", "intl"])
async def test_stream_closed_without_finish_ends_with_error_and_done(
    client: httpx.AsyncClient, fake: FakeUpstream, dialect: Dialect
) -> None:
    fake.enqueue(dialect, Script(answer="cut short here", close_early=True))
    result = await stream_chat(client, dialect, body("x"))
    assert result.content == "cut short here"
    [error] = result.errors
    assert error["type"] == "upstream_error"
    assert result.done
    fake.enqueue(dialect, Script(answer="cut short here", close_early=True))
    assert (await chat(client, dialect, body("x"))).status_code == 502


@pytest.mark.parametrize("dialect", ["cn", "intl"])
async def test_stalled_upstream_times_out_in_band(
    make_server: Any, fake: FakeUpstream, dialect: Dialect
) -> None:
    url = make_server(read_timeout=1.0)
    fake.enqueue(dialect, Script(answer="slow answer", stall_after=1))
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        result = await stream_chat(client, dialect, body("x"))
    [error] = result.errors
    assert error["type"] == "timeout"
    assert result.done
    await fake.wait_for(lambda: fake.open_streams == 0)


async def test_unreachable_upstream_is_502(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(intl_base_url="http://127.0.0.1:9")
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        response = await chat(client, "intl", body("x"))
    assert response.status_code == 502
    _check_error(response.json(), "upstream_error")


async def test_a_known_canned_refusal_is_a_signing_failure(
    make_server: Any, fake: FakeUpstream
) -> None:
    url = make_server(cn_canned_answers=[CANNED_REFUSAL])
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        fake.enqueue("cn", Script(error="canned"))
        refused = await chat(client, "cn", body("hi"))
        fake.enqueue("cn", Script(answer=CANNED_REFUSAL + " But here is the answer.", piece=2))
        similar = await chat(client, "cn", body("hi"))
    assert refused.status_code == 502
    assert refused.json()["error"]["code"] == "signing"
    assert similar.json()["choices"][0]["message"]["content"].endswith("here is the answer.")


async def test_canned_text_passes_when_none_is_configured(
    client: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    fake.enqueue("cn", Script(error="canned"))
    response = await chat(client, "cn", body("hi"))
    assert response.json()["choices"][0]["message"]["content"] == CANNED_REFUSAL
