"""Request logs, request ids, /metrics, and the log secret scan."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import log_scan
from qwen_free_api.observe import client_dialect, configure_logging, formatter, request_id
from qwen_free_api.pool import account_of
from qwen_free_api.settings import Settings
from qwen_free_api.testing import FakeUpstream, Script

from support import CREDENTIALS, body, chat, stream_chat

CLIENT_KEY = "sk-observe-client"
ADMIN_KEY = "admin-observe-key"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, kind: str = "text") -> list[str]:
        return [formatter(kind).format(r) for r in self.records]

    def request(self, rid: str) -> dict[str, Any]:
        found = [getattr(r, "qfa_fields", {}) for r in self.records]
        [fields] = [f for f in found if f.get("request_id") == rid]
        return dict(fields)


@pytest.fixture
def logs() -> Iterator[Records]:
    """Every record of our loggers while the test runs (the servers run in this process)."""
    handler = Records()
    logger = logging.getLogger("qwen_free_api")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def seed(dialect: str) -> dict[str, str]:
    return {"authorization": f"Bearer {CREDENTIALS[dialect]}"}


async def test_streamed_and_plain_answers_are_counted_with_their_first_token_times(
    make_server: Any, fake: FakeUpstream
) -> None:
    async with httpx.AsyncClient(base_url=make_server(), timeout=30) as client:
        streamed = await stream_chat(client, "intl", body("one"))
        plain = await chat(client, "cn", body("two"))
        samples = await scrape(client)
    assert streamed.status == plain.status_code == 200 and streamed.done
    chat_path = {"endpoint": "/v1/chat/completions", "dialect": "openai"}
    assert value(samples, "qfa_requests_total", **chat_path, status="200") == 2
    assert value(samples, "qfa_request_duration_seconds_count", **chat_path) == 2
    ttft = "qfa_time_to_first_token_seconds_count"
    assert value(samples, ttft, dialect="openai", upstream="intl", stream="true") == 1
    assert value(samples, ttft, dialect="openai", upstream="cn", stream="false") == 1
    assert value(samples, "qfa_streams_in_flight") == 0
    assert CREDENTIALS["intl"] not in str(samples) and CREDENTIALS["cn"] not in str(samples)


async def test_an_upstream_error_is_counted_by_class(make_server: Any, fake: FakeUpstream) -> None:
    fake.enqueue("intl", Script(error="quota"))
    async with httpx.AsyncClient(base_url=make_server(), timeout=30) as client:
        answer = await chat(client, "intl", body("x"))
        samples = await scrape(client)
    assert answer.status_code == 429
    assert value(samples, "qfa_errors_total", dialect="openai", **{"class": "RateLimited"}) == 1
    failures = value(
        samples, "qfa_upstream_failures_total", upstream="intl", **{"class": "RateLimited"}
    )
    assert failures == 1
    statuses = {"endpoint": "/v1/chat/completions", "dialect": "openai", "status": "429"}
    assert value(samples, "qfa_requests_total", **statuses) == 1
    ttft = "qfa_time_to_first_token_seconds_count"
    assert value(samples, ttft, dialect="openai", upstream="intl", stream="false") is None


async def test_pool_credentials_are_shown_by_state(make_server: Any, fake: FakeUpstream) -> None:
    url = make_server(
        tokens=[CREDENTIALS["cn"], CREDENTIALS["intl"]], api_keys=[CLIENT_KEY], admin_key=ADMIN_KEY
    )
    admin = {"authorization": f"Bearer {ADMIN_KEY}"}
    cn_id = account_of(CREDENTIALS["cn"], "settings").id
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        before = await scrape(client)
        disabled = await client.post(f"/v1/accounts/{cn_id}/disable", headers=admin)
        after = await scrape(client)
    assert disabled.status_code == 200
    assert value(before, "qfa_credentials", upstream="cn", state="live") == 1
    assert value(before, "qfa_credentials", upstream="intl", state="live") == 1
    assert value(after, "qfa_credentials", upstream="cn", state="live") == 0
    assert value(after, "qfa_credentials", upstream="cn", state="disabled") == 1
    assert value(after, "qfa_credentials", upstream="intl", state="live") == 1
    admin_calls = {"endpoint": "/v1/accounts/{ident}/disable", "dialect": "admin", "status": "200"}
    assert value(after, "qfa_requests_total", **admin_calls) == 1


async def test_in_flight_streams_are_gauged_while_open(
    make_server: Any, fake: FakeUpstream
) -> None:
    fake.enqueue("intl", Script(answer="held answer", hold_after=1))
    async with httpx.AsyncClient(base_url=make_server(), timeout=30) as client:
        request = client.stream("POST", "/v1/chat/completions", json=body(), headers=seed("intl"))
        async with request as response:
            lines = response.aiter_lines()
            first = await anext(lines)
            while not first.startswith("data: "):
                first = await anext(lines)
            during = await scrape(client)
            fake.release()
            rest = [line async for line in lines]
        after = await scrape(client)
    assert response.status_code == 200 and "data: [DONE]" in rest
    assert value(during, "qfa_streams_in_flight") == 1
    assert value(after, "qfa_streams_in_flight") == 0


async def test_metrics_can_require_the_admin_key(make_server: Any, fake: FakeUpstream) -> None:
    closed = make_server(metrics_require_admin=True, admin_key=ADMIN_KEY)
    open_ = make_server(admin_key=ADMIN_KEY)
    async with httpx.AsyncClient(base_url=closed, timeout=30) as client:
        anonymous = await client.get("/metrics")
        wrong = await client.get("/metrics", headers={"authorization": "Bearer nope"})
        await scrape(client, authorization=f"Bearer {ADMIN_KEY}")
        await scrape(client, **{"x-admin-key": ADMIN_KEY})
    async with httpx.AsyncClient(base_url=open_, timeout=30) as client:
        await scrape(client)
    assert anonymous.status_code == wrong.status_code == 401
    assert "qfa_requests_total" not in anonymous.text


async def test_each_request_logs_one_line_with_its_facts(
    make_server: Any, fake: FakeUpstream, logs: Records
) -> None:
    async with httpx.AsyncClient(base_url=make_server(), timeout=30) as client:
        headers = {**seed("intl"), "x-request-id": "req-1.a_B"}
        streamed = client.stream("POST", "/v1/chat/completions", json=body(), headers=headers)
        async with streamed as response:
            await response.aread()
        bad_id = {**seed("cn"), "x-request-id": "no spaces please"}
        plain = await client.post(
            "/v1/chat/completions?key=secret-in-query", json=body(stream=False), headers=bad_id
        )
    assert response.headers["x-request-id"] == "req-1.a_B"
    new_id = plain.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", new_id)
    line = logs.request("req-1.a_B")
    assert line["method"] == "POST" and line["path"] == "/v1/chat/completions"
    assert line["status"] == 200 and line["dialect"] == "openai" and line["upstream"] == "intl"
    assert line["credential"] == account_of(CREDENTIALS["intl"], "seed").id
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    other = logs.request(new_id)
    assert other["upstream"] == "cn" and other["status"] == 200
    text = [t for t in logs.lines() if "request_id=req-1.a_B" in t]
    assert len(text) == 1 and "upstream=intl" in text[0] and "status=200" in text[0]
    assert all("secret-in-query" not in t for t in logs.lines())
    parsed = [json.loads(t) for t in logs.lines("json")]
    [as_json] = [p for p in parsed if p.get("request_id") == "req-1.a_B" and "status" in p]
    assert as_json["upstream"] == "intl" and as_json["logger"] == "qwen_free_api.access"
    assert as_json["credential"] == line["credential"] and as_json["level"] == "INFO"
    assert log_scan.scan(logs.lines()) == [] and log_scan.scan(logs.lines("json")) == []


async def test_errors_are_logged_with_their_class_and_no_credential(
    make_server: Any, fake: FakeUpstream, logs: Records
) -> None:
    fake.enqueue("cn", Script(error="not_login"))
    async with httpx.AsyncClient(base_url=make_server(), timeout=30) as client:
        refused = await chat(client, "cn", body("x"))
        unknown = await client.get("/nowhere")
    line = logs.request(refused.headers["x-request-id"])
    assert refused.status_code == 401 and line["error"] == "CredentialRejected"
    assert logs.request(unknown.headers["x-request-id"])["status"] == 404
    assert log_scan.scan(logs.lines()) == []


def test_request_ids_and_dialects() -> None:
    assert request_id("abc-DEF_1.2") == "abc-DEF_1.2"
    for bad in ("", "a" * 65, "a b", "é", "x\r\ny"):
        assert request_id(bad) != bad and re.fullmatch(r"[0-9a-f]{32}", request_id(bad))
    paths = {
        "/v1/chat/completions": "openai",
        "/v1/responses": "responses",
        "/v1/messages/count_tokens": "anthropic",
        "/v1beta/models/qwen:generateContent": "gemini",
        "/v1/models/qwen:streamGenerateContent": "gemini",
        "/v1/images/generations": "images",
        "/v1/accounts/abc": "admin",
        "/v1/models": "openai",
        "/ping": "other",
    }
    for path, dialect in paths.items():
        scope = {"type": "http", "path": path, "headers": [], "query_string": b""}
        assert client_dialect(scope) == dialect, path
    gemini_list = {"type": "http", "path": "/v1/models", "headers": [], "query_string": b"key=k"}
    assert client_dialect(gemini_list) == "gemini"


def test_the_secret_scan_finds_a_leaked_credential() -> None:
    capture = log_scan.Capture()
    logger = logging.getLogger("qwen_free_api.scan_probe")
    logger.propagate = False  # this leak must not reach the session-wide scan
    logger.addHandler(capture)
    try:
        logger.warning("harmless line")
        logger.warning("upstream said %s", CREDENTIALS["intl"])
        logger.warning("cookie tongyi_sso_ticket=abc123")
        logger.warning("header Authorization: Bearer sk-anything")
        logger.warning("see `Authorization: Bearer <ticket or JWT>`")
    finally:
        logger.removeHandler(capture)
    found = log_scan.scan(capture.lines)
    assert len(found) == 3
    assert all(CREDENTIALS["intl"] not in line and "abc123" not in line for line in found)


def test_serve_logs_json_lines_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        configure_logging(Settings(_env_file=None, log_format="json", log_level="info"))
        logging.getLogger("qwen_free_api.probe").info("hello %s", "there")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    line = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert line["message"] == "hello there" and line["logger"] == "qwen_free_api.probe"
    assert line["level"] == "INFO"
