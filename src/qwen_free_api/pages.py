"""The welcome page at `/` and its live health summary at `/status`.

The page is one self-contained HTML document (CSS and JS inlined from `static/`, no CDN, no
font), in English and Chinese. It is rendered on the server with the current health figures and
with copy-paste snippets filled in with this server's address, so it works without JS; the JS
switches the language (remembered in localStorage), copies snippets and refreshes the figures
from `/status`. The address comes from the request's Host header, which anyone can forge: only a
plain host name or address with an optional port is used, anything else falls back to the
socket's own address, and every interpolated value is HTML-escaped.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import time
from importlib import resources
from typing import get_args

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from qwen_free_api import __version__
from qwen_free_api.credentials import Dialect
from qwen_free_api.pool import State, describe
from qwen_free_api.web import gateway_of

STATES: tuple[State, ...] = get_args(State)
DIALECTS: tuple[Dialect, ...] = get_args(Dialect)
SANE_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?"
)
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")


def _asset(name: str) -> str:
    return (resources.files("qwen_free_api") / "static" / name).read_text(encoding="utf-8")


def _digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


TEMPLATE = _asset("welcome.html")
CSS = _asset("welcome.css")
JS = _asset("welcome.js")
HEADERS = {
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "content-security-policy": (
        f"default-src 'none'; style-src {_digest(CSS)}; script-src {_digest(JS)}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
}

# (shown method and path, route path that must exist or "" for always, English, Chinese)
ENDPOINTS: tuple[tuple[str, str, str, str], ...] = (
    (
        "POST /v1/chat/completions",
        "",
        "OpenAI Chat Completions (stream or not, tools)",
        "OpenAI Chat Completions（流式或非流式，支持工具）",
    ),
    ("POST /v1/responses", "", "OpenAI Responses (Codex)", "OpenAI Responses（Codex）"),
    (
        "POST /v1/messages",
        "",
        "Anthropic Messages (Claude Code), also count_tokens",
        "Anthropic Messages（Claude Code），以及 count_tokens",
    ),
    (
        "POST /v1beta/models/{model}:generateContent",
        "",
        "Gemini (gemini-cli): also :streamGenerateContent, :countTokens",
        "Gemini（gemini-cli）：以及 :streamGenerateContent、:countTokens",
    ),
    ("POST /v1/images/generations", "", "draw images", "生成图片"),
    ("GET /v1/models", "", "the models of both backends", "两个后端的模型列表"),
    ("POST /token/check", "", "check a ticket or token", "检查 ticket 或 token 是否有效"),
    (
        "GET /v1/accounts",
        "",
        "admin API: pool credentials (masked)",
        "管理接口：账号池凭证（已脱敏）",
    ),
    (
        "GET /status",
        "",
        "this page's health summary (JSON, counts only)",
        "本页的健康摘要（JSON，仅计数）",
    ),
    ("GET /metrics", "/metrics", "Prometheus metrics", "Prometheus 指标"),
    ("GET /openapi.json", "/openapi.json", "OpenAPI description", "OpenAPI 描述"),
    ("GET /docs", "/docs", "API documentation", "API 文档"),
    ("GET /ping", "", "pong", "pong"),
)


def base_url(request: Request) -> str:
    """`scheme://host[:port]` of this server as the client reached it, never anything odd."""
    scheme = request.url.scheme if request.url.scheme in ("http", "https") else "http"
    host = request.headers.get("host", "")
    if not SANE_HOST.fullmatch(host):
        server = request.scope.get("server")
        if server:
            address, port = server[0], server[1]
            address = f"[{address}]" if ":" in str(address) else str(address)
            host = f"{address}:{port}" if port else address
        else:
            host = "127.0.0.1"
    return f"{scheme}://{host}"


async def summary(request: Request) -> dict[str, object]:
    """Version, mode and credential counts by state and backend: never a credential."""
    gateway = gateway_of(request)
    views = await describe(gateway.pool, gateway.pool.accounts)
    accounts: dict[str, int] = dict.fromkeys(STATES, 0)
    backends: dict[str, dict[str, int]] = {d: dict.fromkeys(STATES, 0) for d in DIALECTS}
    for view in views:
        state, dialect = str(view["state"]), str(view["dialect"])
        accounts[state] = accounts.get(state, 0) + 1
        backends.setdefault(dialect, dict.fromkeys(STATES, 0))[state] += 1
    return {
        "version": __version__,
        "mode": "pool" if gateway.settings.pool_mode else "seed",
        "accounts": accounts,
        "backends": backends,
    }


def _endpoint_rows(request: Request) -> str:
    present = {getattr(route, "path", None) for route in request.app.routes}
    rows = []
    for shown, needs, english, chinese in ENDPOINTS:
        if needs and needs not in present:
            continue
        rows.append(
            f'<tr><td><code>{html.escape(shown)}</code></td><td><span class="en">'
            f'{html.escape(english)}</span><span class="zh">{html.escape(chinese)}</span></td></tr>'
        )
    return "\n".join(rows)


def render(request: Request, status: dict[str, object]) -> str:
    accounts = status["accounts"]
    assert isinstance(accounts, dict)
    mode = str(status["mode"])
    values: dict[str, str] = {
        "version": __version__,
        "base": base_url(request),
        "mode": mode,
        "key_hint": "<one of QFA_API_KEYS>" if mode == "pool" else "<cn ticket or intl token>",
        "total": str(sum(accounts.values())),
        "now": time.strftime("%H:%M:%S"),
        **{state: str(accounts[state]) for state in STATES},
    }
    escaped = {name: html.escape(value, quote=True) for name, value in values.items()}
    raw = {"css": CSS, "js": JS, "endpoints": _endpoint_rows(request)}
    return PLACEHOLDER.sub(lambda m: raw[m[1]] if m[1] in raw else escaped[m[1]], TEMPLATE)


async def welcome(request: Request) -> Response:
    page = render(request, await summary(request))
    return HTMLResponse(page, headers=HEADERS)


async def status(request: Request) -> Response:
    return JSONResponse(await summary(request), headers={"cache-control": "no-store"})


routes = [
    Route("/", welcome, methods=["GET", "HEAD"]),
    Route("/status", status, methods=["GET"]),
]
