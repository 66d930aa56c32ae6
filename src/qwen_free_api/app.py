"""The web application: routes of every dialect, long-lived state, errors as JSON."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from qwen_free_api import __version__, admin, apidocs, observe, pages
from qwen_free_api.dialects import (
    Dialect,
    anthropic,
    anthropic_render,
    gemini,
    images,
    openai,
    responses,
)
from qwen_free_api.errors import BadRequest, GatewayError, NotFound
from qwen_free_api.janitor import Janitor
from qwen_free_api.pool import Pool
from qwen_free_api.respond import Stop, error_response
from qwen_free_api.service import Gateway
from qwen_free_api.settings import Settings
from qwen_free_api.store import open_store
from qwen_free_api.tokens import shared_tokenizer
from qwen_free_api.upstreams.http import Http
from qwen_free_api.web import bearer, gateway_of, read_json

log = logging.getLogger(__name__)


class UnsafeSettings(ValueError):
    """Settings that would expose the upstream accounts to anyone who can connect."""


def check_settings(settings: Settings) -> None:
    """Refuse to serve a credential pool without client keys on a non-loopback address."""
    if settings.pool_mode and not settings.api_keys and not _is_loopback(settings.host):
        raise UnsafeSettings(
            "QFA_TOKENS is set but QFA_API_KEYS is empty: anyone reaching "
            f"{settings.host}:{settings.port} could use your accounts. Set QFA_API_KEYS, "
            "or bind to 127.0.0.1."
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def ping(request: Request) -> Response:
    return PlainTextResponse("pong")


async def token_check(request: Request) -> Response:
    gateway = gateway_of(request)
    try:
        if gateway.settings.pool_mode:
            gateway.authorize(bearer(request))
        body = await read_json(request, 64 << 10)
        token = body.get("token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token.strip():
            raise BadRequest("`token` must be a non-empty string", param="token")
        found = await gateway.check(token)
        return JSONResponse({"live": found.live, "state": found.state, "reason": found.reason})
    except GatewayError as error:
        return error_response(openai.DIALECT, error)


async def list_models(request: Request) -> Response:
    """`GET /v1/models` is shared by three dialects: the key header tells whose list it is."""
    if "x-goog-api-key" in request.headers or "key" in request.query_params:
        return await gemini.list_models(request)
    if "anthropic-version" in request.headers or "x-api-key" in request.headers:
        return await anthropic.list_models(request)
    return await openai.list_models(request)


async def get_model(request: Request) -> Response:
    """`GET /v1/models/{id}`: Gemini's model when the key header is Google's, else OpenAI's."""
    if "x-goog-api-key" in request.headers or "key" in request.query_params:
        return await gemini.get_model(request)
    return await openai.get_model(request)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
    dialect = _dialect_of_path(request.url.path)
    if status == 404 and dialect is not None:  # e.g. a model name no route pattern matches
        return error_response(dialect, NotFound(str(detail)))
    kind = "invalid_request_error" if status < 500 else "server_error"
    body = {"error": {"message": str(detail), "type": kind, "code": status, "param": None}}
    return JSONResponse(body, status)


def _dialect_of_path(path: str) -> Dialect | None:
    """Anthropic's or Gemini's error shape for their paths; None: OpenAI's (the default)."""
    if path.startswith("/v1beta/") or (path.startswith("/v1/models/") and ":" in path):
        return gemini.DIALECT
    if path.startswith("/v1/messages"):
        return anthropic_render.DIALECT
    return None


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return await _http_error(request, exc)


def create_app(settings: Settings, *, stopping: asyncio.Event | None = None) -> Starlette:
    """The application; `stopping` is set when the server begins a graceful shutdown."""
    stop = Stop(stopping or asyncio.Event(), settings.shutdown_timeout)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Gateway]]:
        tokenizer = await asyncio.to_thread(shared_tokenizer)
        store = await open_store(settings.store)
        pool = Pool(settings, store)
        await pool.load()
        http = Http(settings)
        janitor = Janitor()
        gateway = Gateway(settings, http, janitor, tokenizer, pool, stop)
        await gateway.logins.start()
        background = [
            asyncio.create_task(gateway.logins.run_forever()),
            asyncio.create_task(gateway.conversations.sweep_forever()),
            asyncio.create_task(gateway.prober.run_forever()),
        ]
        try:
            yield {"gateway": gateway}
        finally:
            for task in background:
                task.cancel()
            await janitor.drain(timeout=10)
            await http.close()
            await store.close()

    routes = [
        Route("/ping", ping, methods=["GET"]),
        Route("/token/check", token_check, methods=["POST"]),
        *pages.routes,
        *apidocs.routes,
        *observe.routes,
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/v1/models/{target:path}", get_model, methods=["GET"]),
        *openai.routes,
        *anthropic.routes,
        *gemini.routes,
        *responses.routes,
        *images.routes,
        *admin.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=observe.middleware(settings),
        exception_handlers={HTTPException: _http_error, Exception: _unexpected},
    )
    app.state.version = __version__
    return app
