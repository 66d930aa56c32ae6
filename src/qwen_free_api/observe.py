"""Request logs, request ids and `/metrics`: one log line and one count per request.

A pure ASGI middleware wraps every HTTP request. It gives the request an id (the client's
`x-request-id` if it is sane, else a new one, returned in the same header), collects facts noted
while the request is served (see `observe_facts`), and when the response body has ended — for a
stream, when the stream ends — writes one log line and updates the app's metrics. The line holds
the method, the path (never the query string: Gemini keys travel there), the status, the
duration, the client and upstream dialects and the credential's one-way id: never a secret.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from qwen_free_api import observe_facts
from qwen_free_api.observe_metrics import SCOPE_KEY, Metrics, metrics_endpoint
from qwen_free_api.settings import Settings

access = logging.getLogger("qwen_free_api.access")

SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class Observe:
    """Logs and counts every HTTP request; see the module's description."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = self.metrics
        rid = request_id(Headers(scope=scope).get("x-request-id"))
        facts: dict[str, Any] = {"request_id": rid, "start": time.monotonic(), "status": 500}
        header = (b"x-request-id", rid.encode())

        def finish() -> None:
            if facts.pop("open", False):
                if facts.get("counted_stream"):
                    self.metrics.streams.dec()
                self._finish(scope, facts)

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                facts["status"] = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
                if facts.get("stream") and not facts.get("counted_stream"):
                    facts["counted_stream"] = True
                    self.metrics.streams.inc()
            elif message["type"] == "http.response.body":
                if "first_byte" not in facts and message.get("body"):
                    facts["first_byte"] = time.monotonic()
                if not message.get("more_body"):
                    finish()  # before the last bytes go out: a client never outruns its log line
            await send(message)

        facts["open"] = True
        token = observe_facts.begin(facts)
        try:
            await self.app(scope, receive, sending)
        finally:
            finish()  # an exception, or a client gone before the end
            observe_facts.end(token)

    def _finish(self, scope: Scope, facts: dict[str, Any]) -> None:
        end = time.monotonic()
        route = scope.get("route")
        endpoint = getattr(route, "path", None) or "unmatched"
        dialect = client_dialect(scope)
        self.metrics.record(facts, endpoint, dialect, end)
        if not access.isEnabledFor(logging.INFO):
            return  # the line would be dropped: do not build it
        fields = {
            "request_id": facts["request_id"],
            "method": scope["method"],
            "path": scope["path"],
            "status": facts["status"],
            "duration_ms": round((end - facts["start"]) * 1000, 1),
            "dialect": dialect,
            "upstream": facts.get("upstream"),
            "credential": facts.get("credential"),
        }
        if "error" in facts:
            fields["error"] = facts["error"]
        text = " ".join(f"{k}={'-' if v is None else v}" for k, v in fields.items())
        access.info("%s", text, extra={"qfa_fields": fields})


def request_id(incoming: str | None) -> str:
    """The client's request id if it is short and plain, else a new one."""
    if incoming and SANE_ID.fullmatch(incoming):
        return incoming
    return uuid.uuid4().hex


def client_dialect(scope: Scope) -> str:
    """Which client API a request speaks, from its path (and key headers for model lists)."""
    path: str = scope["path"]
    if path.endswith("/chat/completions"):
        return "openai"
    if path in ("/v1/responses", "/responses"):
        return "responses"
    if path.startswith("/v1/messages"):
        return "anthropic"
    if (
        path.startswith("/v1beta/")
        or path == "/v1beta"
        or (path.startswith("/v1/models/") and ":" in path)
    ):
        return "gemini"
    if path.endswith("/images/generations"):
        return "images"
    if path.startswith("/v1/accounts"):
        return "admin"
    if path in ("/v1/models", "/models") or path.startswith("/v1/models/"):
        headers = Headers(scope=scope)
        if "x-goog-api-key" in headers or b"key=" in scope.get("query_string", b""):
            return "gemini"
        if "anthropic-version" in headers or "x-api-key" in headers:
            return "anthropic"
        return "openai"
    return "other"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a request's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "qfa_fields", None)
        if isinstance(fields, dict):
            line.update(fields)
        else:
            facts = observe_facts.current()
            if facts is not None:
                line["request_id"] = facts.get("request_id")
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter(kind: str) -> logging.Formatter:
    """The formatter of `QFA_LOG_FORMAT`: `text` (default) or `json` (JSON lines)."""
    return JsonFormatter() if kind == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(settings: Settings) -> None:
    """The root handler of `serve`: every log line, ours and uvicorn's, in the chosen format."""
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(settings.log_format))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())


def middleware(settings: Settings) -> list[Middleware]:
    return [Middleware(Observe, metrics=Metrics())]


routes: list[Route] = [Route("/metrics", metrics_endpoint, methods=["GET"])]
