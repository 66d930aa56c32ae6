"""/openapi.json and /docs: the document matches the mounted routes, both ways, and resolves."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, async_playwright, expect
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from qwen_free_api import __version__
from qwen_free_api.apidocs import build
from qwen_free_api.app import create_app

from support import settings_for

METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}
TEMPLATE = re.compile(r"\{(\w+)\}")
ROUTER_MISSES = {"Not Found", "Method Not Allowed"}  # what Starlette says when no route matched


@pytest.fixture
async def spec(client: httpx.AsyncClient) -> dict[str, Any]:
    answer = await client.get("/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    document: dict[str, Any] = answer.json()
    return document


def mounted() -> set[tuple[str, str]]:
    """(method, route path) of every route the app mounts; HEAD comes with GET."""
    app = create_app(settings_for("http://127.0.0.1:9"))
    found = set()
    for route in app.routes:
        assert isinstance(route, Route), route
        found |= {(m.lower(), route.path) for m in route.methods or () if m != "HEAD"}
    return found


def operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, op in item.items():
            assert method in METHODS, (path, method)
            yield method, path, op


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


def pointer(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, ref
        node = node[part]
    return node


def resolved(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = pointer(document, schema["$ref"]) if "$ref" in schema else schema
    return found


# --- the document --------------------------------------------------------------------------------


async def test_the_document_is_well_formed_openapi_3_1(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1.")
    assert spec["info"]["title"]
    assert spec["info"]["version"] == __version__
    schemes = spec["components"]["securitySchemes"]
    assert {"bearer", "anthropicKey", "googleKey", "adminBearer", "adminKey"} <= set(schemes)
    assert schemes["anthropicKey"] == {"type": "apiKey", "in": "header", "name": "x-api-key"}
    assert schemes["googleKey"]["name"] == "x-goog-api-key"
    ids = [op["operationId"] for _, _, op in operations(spec)]
    assert len(ids) == len(set(ids))
    for method, path, op in operations(spec):
        assert path.startswith("/") and ":path" not in path, path
        assert op["summary"] and op["responses"], (method, path)
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert declared == set(TEMPLATE.findall(path)), (method, path)
        for requirement in op["security"]:
            assert set(requirement) <= set(schemes), (method, path)
        for status, answer in op["responses"].items():
            assert re.fullmatch(r"[1-5]\d\d", status) and answer["description"], (path, status)


async def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    found = list(refs(spec))
    assert len(found) > 50
    for ref in found:
        assert isinstance(pointer(spec, ref), dict), ref
    assert "$defs" not in str(found)
    assert all("$defs" not in schema for schema in spec["components"]["schemas"].values())


async def test_every_mounted_route_is_documented_and_nothing_else(spec: dict[str, Any]) -> None:
    documented = {(method, op["x-route"]) for method, _, op in operations(spec)}
    routes = mounted()
    assert routes - documented == set()
    assert documented - routes == set()
    paths = {(method, path) for method, path, _ in operations(spec)}
    assert ("get", "/v1/models/{model}") in paths
    assert ("post", "/v1beta/models/{model}:generateContent") in paths
    assert ("post", "/v1beta/models/{model}:streamGenerateContent") in paths
    assert ("post", "/v1/models/{model}:countTokens") in paths
    assert ("get", "/openapi.json") in paths and ("get", "/docs") in paths


async def test_every_mounted_handler_has_a_written_description(spec: dict[str, Any]) -> None:
    """A new route must be added to apidocs_schemas.OPS, or it is documented only plainly."""
    plain = [(method, path) for method, path, op in operations(spec) if op["tags"] == ["Other"]]
    assert plain == []


async def test_every_documented_path_reaches_a_handler(
    client: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    for method, path, _ in operations(spec):
        concrete = TEMPLATE.sub("qwen3-max", path)
        answer = await client.request(method, concrete, json={})
        if answer.status_code in (404, 405):
            body = answer.json() if "json" in answer.headers["content-type"] else {}
            message = str(body.get("error", {}).get("message", answer.text))
            assert message not in ROUTER_MISSES, (method, concrete)


async def test_request_bodies_come_from_the_wire_models(spec: dict[str, Any]) -> None:
    def body(path: str) -> dict[str, Any]:
        op = spec["paths"][path]["post"]
        assert op["requestBody"]["required"] is True
        return resolved(spec, op["requestBody"]["content"]["application/json"]["schema"])

    chat = body("/v1/chat/completions")
    assert {"model", "messages"} <= set(chat["required"])
    messages = chat["properties"]["messages"]["items"]
    assert "role" in resolved(spec, messages)["properties"]
    assert "prompt" in body("/v1/images/generations")["required"]
    assert "max_tokens" in body("/v1/messages")["required"]
    assert "max_tokens" not in body("/v1/messages/count_tokens").get("required", [])
    assert "contents" in body("/v1beta/models/{model}:generateContent")["properties"]
    assert "generate_content_request" in body("/v1beta/models/{model}:countTokens")["properties"]
    assert "input" in body("/v1/responses")["properties"]
    assert body("/token/check")["required"] == ["token"]
    assert body("/v1/accounts")["required"] == ["token"]
    assert "requestBody" not in spec["paths"]["/v1/models"]["get"]


async def test_answers_and_errors_follow_each_dialect(spec: dict[str, Any]) -> None:
    def error_schema(path: str, method: str, status: str) -> str:
        answer = spec["paths"][path][method]["responses"][status]
        ref: str = answer["content"]["application/json"]["schema"]["$ref"]
        return ref.rsplit("/", 1)[1]

    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert set(chat["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    for status in ("400", "401", "404", "413", "429", "502", "503", "504"):
        assert error_schema("/v1/chat/completions", "post", status) == "OpenAIError"
        assert error_schema("/v1/messages", "post", status) == "AnthropicError"
        assert error_schema("/v1beta/models/{model}:generateContent", "post", status) == (
            "GeminiError"
        )
    assert error_schema("/v1/accounts/{ident}", "delete", "409") == "OpenAIError"
    assert spec["paths"]["/v1/accounts"]["post"]["responses"]["201"]
    assert {"bearer": []} in chat["security"]
    assert {"anthropicKey": []} in spec["paths"]["/v1/messages"]["post"]["security"]
    generate = spec["paths"]["/v1beta/models/{model}:generateContent"]["post"]
    assert {"googleKey": []} in generate["security"]
    assert spec["paths"]["/v1/accounts"]["get"]["security"] == [
        {"adminBearer": []},
        {"adminKey": []},
    ]
    assert spec["paths"]["/ping"]["get"]["security"] == []
    assert "text/plain" in spec["paths"]["/ping"]["get"]["responses"]["200"]["content"]


# --- built from the routes it is given -----------------------------------------------------------


async def unknown(request: Request) -> Response:
    """Echo a number."""
    return PlainTextResponse(str(request.path_params["n"]))


def test_a_route_unknown_to_the_table_is_still_documented() -> None:
    document = build([Route("/echo/{n:int}/{rest:path}", unknown, methods=["GET", "PUT"])])
    assert set(document["paths"]) == {"/echo/{n}/{rest}"}
    item = document["paths"]["/echo/{n}/{rest}"]
    assert set(item) == {"get", "put"}
    assert item["get"]["summary"] == "Echo a number."
    assert [p["name"] for p in item["get"]["parameters"]] == ["n", "rest"]


def test_an_unmounted_dialect_is_not_documented() -> None:
    app = create_app(settings_for("http://127.0.0.1:9"))
    kept = [r for r in app.routes if isinstance(r, Route) and "messages" not in r.path]
    document = build(kept)
    assert "/v1/messages" not in document["paths"]
    assert "/v1/chat/completions" in document["paths"]
    assert "AnthropicMessagesRequest" in document["components"]["schemas"]


# --- the page ------------------------------------------------------------------------------------


async def test_the_docs_page_is_self_contained(client: httpx.AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/openapi.json" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", page.text)
    assert "@import" not in page.text and "url(" not in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "http" not in policy
    assert "esc(" in page.text  # every value is HTML-escaped before it is inserted


# --- the page in headless Chromium ---------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
HOSTILE = "<img src=x onerror=window.owned=1>"


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/check installs Debian's chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield await browser.new_page()
        await browser.close()


async def test_the_page_renders_the_endpoints_from_same_origin_only(
    page: Page, server: str
) -> None:
    problems: list[str] = []
    requested: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda r: requested.append(r.url))
    await page.goto(f"{server}/docs")
    chat = page.locator("details.op", has_text="Create a chat completion (OpenAI)").first
    await expect(chat).to_be_visible()
    await expect(page.locator("#version")).to_have_text(f"version {__version__}")
    await chat.locator("summary").first.click()
    body = chat.locator(".body")
    await expect(body).to_contain_text("Request body")
    await expect(body.locator("li", has_text="messages").first).to_contain_text("required")
    await expect(page.locator("details.op")).to_have_count(await _count(page))
    assert problems == []
    assert requested and all(url.startswith(server + "/") for url in requested), requested


async def _count(page: Page) -> int:
    count: int = await page.evaluate(
        "fetch('/openapi.json').then(r => r.json()).then(s => "
        "Object.values(s.paths).reduce((n, item) => n + Object.keys(item).length, 0))"
    )
    return count


async def test_the_page_escapes_what_the_document_says(page: Page, server: str) -> None:
    hostile = {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": HOSTILE},
        "tags": [{"name": HOSTILE}],
        "paths": {
            "/x/" + HOSTILE: {
                "post": {
                    "summary": HOSTILE,
                    "description": HOSTILE,
                    "tags": [HOSTILE],
                    "security": [{HOSTILE: []}],
                    "parameters": [{"name": HOSTILE, "in": "path", "description": HOSTILE}],
                    "requestBody": {
                        "content": {"application/json": {"schema": {"$ref": "#/c/s/B"}}}
                    },
                    "responses": {"200": {"description": HOSTILE}},
                }
            }
        },
        "components": {"schemas": {"B": {"properties": {HOSTILE: {"description": HOSTILE}}}}},
    }
    await page.route(
        "**/openapi.json",
        lambda route: route.fulfill(json=hostile, content_type="application/json"),
    )
    await page.goto(f"{server}/docs")
    op = page.locator("details.op").first
    await expect(op).to_contain_text(HOSTILE)
    await op.locator("summary").first.click()
    await expect(op.locator(".body")).to_contain_text(HOSTILE)
    assert await page.locator("img").count() == 0
    assert await page.evaluate("window.owned") is None
