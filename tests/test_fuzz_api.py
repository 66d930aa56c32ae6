"""Schemathesis against a real server process's /openapi.json, the server wired to the fake.

For every documented operation, bodies, paths and queries that fit the document (positive)
and that break it (negative) are sent over loopback. Every answer must be documented (status,
content type, schema), never a 5xx, and every rejection must be the dialect's own error shape.
Bounded (a few examples per operation) and derandomized, so a run is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.transport import Response
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.schemas import BaseSchema

from qwen_free_api import apidocs
from qwen_free_api.app import create_app
from qwen_free_api.testing import FakeUpstream
from served import Served, served

from support import CN_TICKET, settings_for

ADMIN_KEY = "admin-fuzz-key"
EXAMPLES = 12
# The operations of the document the app builds from its routes, as the server will serve it.
DOCUMENT = apidocs.build(create_app(settings_for("http://127.0.0.1:9")).routes)
# Negative cases need something to break: a body (a path segment is any string).
OPERATIONS = [
    (method.upper(), path, op["tags"][0], mode)
    for path, item in DOCUMENT["paths"].items()
    for method, op in item.items()
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    if mode.is_positive or "requestBody" in op
]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def server(
    fake_server: tuple[FakeUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    with served(fake_server[1], tmp_path_factory.mktemp("fuzz"), admin_key=ADMIN_KEY) as process:
        yield process


@pytest.fixture(scope="module")
def schema(server: Served) -> BaseSchema:
    loaded = schemathesis.openapi.from_url(server.url + "/openapi.json")
    assert loaded.raw_schema["paths"] == DOCUMENT["paths"]  # the process serves this document
    return loaded


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def credentials(tag: str) -> dict[str, str]:
    """Keys that pass, so positive cases reach the handler's real work (the fake upstream)."""
    if tag == "Admin":
        return {"x-admin-key": ADMIN_KEY}
    return {"authorization": f"Bearer {CN_TICKET}"}


def assert_dialect_error(tag: str, path: str, response: Response) -> None:
    """A 4xx is JSON in the dialect's own error envelope."""
    if response.status_code < 400 or path in ("/", "/docs"):
        return
    body: Any = response.json()
    if tag == "Anthropic":
        assert body["type"] == "error" and {"type", "message"} <= set(body["error"])
    elif tag == "Gemini":
        error = body["error"]
        assert error["code"] == response.status_code and {"message", "status"} <= set(error)
    else:
        assert {"message", "type"} <= set(body["error"])


@pytest.mark.parametrize(("method", "path", "tag", "mode"), OPERATIONS)
def test_operation(
    schema: BaseSchema,
    server: Served,
    session: requests.Session,
    method: str,
    path: str,
    tag: str,
    mode: GenerationMode,
) -> None:
    operation = schema[path][method]
    checks = [*CHECKS, negative_data_rejection] if mode.is_negative else CHECKS

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    # No feedback: the default mines constants from whatever modules the process has loaded,
    # so the inputs would depend on which other tests ran first.
    @given(case=operation.as_strategy(generation_mode=mode, feedback=NO_FEEDBACK))
    def run(case: Case[Any]) -> None:
        headers = credentials(tag)
        response = case.call(base_url=server.url, session=session, headers=headers, timeout=30)
        case.validate_response(response, checks=checks, headers=headers)
        assert_dialect_error(tag, path, response)

    run()
