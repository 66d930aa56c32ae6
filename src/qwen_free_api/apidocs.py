"""/openapi.json, built from the routes actually mounted, and /docs, a page that reads it.

The document is built at request time from `request.app.routes`: every mounted route is
described and nothing else. Bodies, auth and error envelopes come from apidocs_schemas.py.
Starlette converters (`{target:path}`) become plain path parameters; the Gemini
`models/{model}:{action}` handler is written out as one path per action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route

from qwen_free_api import __version__
from qwen_free_api.apidocs_schemas import (
    GEMINI_ACTION_HANDLER,
    GEMINI_OPS,
    OPS,
    SECURITY_SCHEMES,
    STATUS_TEXT,
    Op,
    component_schemas,
)
from qwen_free_api.dialects.gemini import METHODS as GEMINI_ACTIONS

PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")
TAGS = ["OpenAI", "Anthropic", "Gemini", "Models", "Admin", "Service", "Other"]
DESCRIPTION = (
    "Standard LLM APIs (OpenAI, Anthropic, Gemini) over your own Qwen web-chat login. "
    "In pool mode clients send a key from QFA_API_KEYS; in seed mode they send their own "
    "Qwen credentials as the key."
)


def handler_key(route: Route) -> str:
    endpoint = route.endpoint
    return f"{endpoint.__module__}.{endpoint.__qualname__}"


def plain_op(route: Route) -> Op:
    """A handler the table does not know: its docstring, and no claims about the rest."""
    doc = (route.endpoint.__doc__ or "").strip().splitlines()
    return Op(doc[0] if doc else route.name, "Other", errors=None)


def open_path(path: str, rename: dict[str, str]) -> tuple[str, list[str]]:
    """`/v1/models/{target:path}` -> (`/v1/models/{model}`, [`model`])."""
    names: list[str] = []

    def plain(match: re.Match[str]) -> str:
        name = rename.get(match[1], match[1])
        names.append(name)
        return "{" + name + "}"

    return PARAM.sub(plain, path), names


def operations(routes: Iterable[BaseRoute]) -> Iterable[tuple[str, str, str, Op]]:
    """(method, OpenAPI path, route path, how to document it) for every mounted route."""
    for route in routes:
        if not isinstance(route, Route):
            continue
        key = handler_key(route)
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue  # Starlette answers HEAD wherever it answers GET
            if key == GEMINI_ACTION_HANDLER:
                for action in GEMINI_ACTIONS:
                    op = GEMINI_OPS.get(action) or plain_op(route)
                    path, _ = open_path(route.path, {"target": "model"})
                    yield method, f"{path}:{action}", route.path, op
                continue
            op = OPS.get(key) or plain_op(route)
            path, _ = open_path(route.path, op.rename)
            yield method, path, route.path, op


def operation(method: str, path: str, route_path: str, op: Op) -> dict[str, Any]:
    _, names = open_path(path, {})
    found: dict[str, Any] = {
        "operationId": re.sub(r"[^A-Za-z0-9]+", "_", f"{method} {path}").strip("_").lower(),
        "summary": op.summary,
        "tags": [op.tag],
        "x-route": route_path,
        "security": [{name: []} for name in op.auth] + ([{}] if op.auth_optional else []),
        "responses": responses(op),
    }
    if op.description:
        found["description"] = op.description
    if names:
        found["parameters"] = [path_param(name, op, route_path) for name in names]
    if op.body:
        schema = {"$ref": "#/components/schemas/" + op.body}
        found["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": schema}},
        }
    return found


def path_param(name: str, op: Op, route_path: str) -> dict[str, Any]:
    description = op.params.get(name, "")
    if ":path}" in route_path:
        description = (description + " (may contain slashes)").strip()
    param: dict[str, Any] = {"name": name, "in": "path", "required": True}
    param["schema"] = {"type": "string"}
    if description:
        param["description"] = description
    return param


def responses(op: Op) -> dict[str, Any]:
    content = {kind: {"schema": success_schema(kind)} for kind in op.success}
    found: dict[str, Any] = {str(op.status): {"description": "Success", "content": content}}
    if op.errors is None:
        return found
    schema = {"$ref": "#/components/schemas/" + op.errors}
    for status in op.statuses:
        found[str(status)] = {
            "description": STATUS_TEXT[status],
            "content": {"application/json": {"schema": schema}},
        }
    return found


def success_schema(kind: str) -> dict[str, Any]:
    if kind == "application/json":
        return {"type": ["object", "array"]}
    if kind == "text/event-stream":
        return SSE_EVENT
    return {"type": "string"}


# For text/event-stream the schema describes each event (as OpenAPI tools read it).
SSE_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "One server-sent event; `data` holds a JSON object (or `[DONE]`).",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}


def build(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of these routes."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path, route_path, op in operations(routes):
        methods = paths.setdefault(path, {})
        # the first route that matches answers, as in Starlette's router
        methods.setdefault(method.lower(), operation(method, path, route_path, op))
    used = {op["tags"][0] for item in paths.values() for op in item.values()}
    return {
        "openapi": "3.1.0",
        "info": {"title": "qwen-free-api", "version": __version__, "description": DESCRIPTION},
        "tags": [{"name": tag} for tag in TAGS if tag in used],
        "paths": paths,
        "components": {"schemas": schemas(), "securitySchemes": SECURITY_SCHEMES},
    }


@cache
def schemas() -> dict[str, Any]:
    return component_schemas()


async def openapi(request: Request) -> Response:
    return JSONResponse(build(request.app.routes))


async def docs(request: Request) -> Response:
    return HTMLResponse(PAGE, headers=PAGE_HEADERS)


PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; img-src data:",
    "x-content-type-options": "nosniff",
}

CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.3rem}
header p{margin:.2rem 0 0;opacity:.8}main{max-width:70rem;margin:0 auto;padding:1rem 2rem}
h2{margin:1.5rem 0 .5rem;font-size:1.1rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}
details.op{background:#fff;border:1px solid #d8dbe2;border-radius:6px;margin:.4rem 0}
details.op>summary{cursor:pointer;padding:.5rem .8rem;list-style:none}
details.op>summary::-webkit-details-marker{display:none}.body{padding:0 1rem 1rem}
.m{display:inline-block;min-width:4.2rem;text-align:center;font-weight:700;border-radius:4px;
color:#fff;font-size:.8rem;padding:.1rem .3rem;margin-right:.5rem}.get{background:#2f7d4f}
.post{background:#2b5fb3}.delete{background:#b33b2b}.put,.patch{background:#a8661b}
code,pre{font-family:ui-monospace,monospace;font-size:.88rem}pre{background:#f0f1f4;
padding:.6rem;overflow:auto;border-radius:4px}table{border-collapse:collapse;margin:.3rem 0}
td,th{border:1px solid #d8dbe2;padding:.2rem .5rem;text-align:left;vertical-align:top}
.req{color:#b33b2b}.muted{color:#667}ul.props{margin:.2rem 0;padding-left:1.2rem}
"""

JS = r"""
const esc = (v) => String(v).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;",
  ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c]));
let spec = {};
const resolve = (s) => {
  if (!s || !s["$ref"]) return [s || {}, ""];
  const name = s["$ref"].split("/").pop();
  return [(spec.components.schemas || {})[name] || {}, name];
};
const typeOf = (s) => {
  const [r, name] = resolve(s);
  if (name) return name;
  if (r.type) return [].concat(r.type).join(" | ") +
    (r.items ? " of " + typeOf(r.items) : "");
  if (r.const !== undefined) return JSON.stringify(r.const);
  if (r.enum) return r.enum.map((e) => JSON.stringify(e)).join(" | ");
  const alts = r.anyOf || r.oneOf;
  if (alts) return alts.map(typeOf).join(" | ");
  return "any";
};
const schemaHtml = (s, depth, seen) => {
  const [r, name] = resolve(s);
  if (depth > 5 || (name && seen.includes(name))) return "";
  const next = name ? seen.concat([name]) : seen;
  const alts = (r.anyOf || r.oneOf || []).concat(r.items ? [r.items] : []);
  if (!r.properties) return alts.map((a) => schemaHtml(a, depth + 1, next)).join("");
  const required = r.required || [];
  const items = Object.entries(r.properties).map(([key, p]) => {
    const [pr] = resolve(p);
    const inner = schemaHtml(p, depth + 1, next);
    const line = "<code>" + esc(key) + "</code>" +
      (required.includes(key) ? ' <span class="req">required</span>' : "") +
      ' <span class="muted">' + esc(typeOf(p)) + "</span>" +
      (pr.description || p.description ? " — " + esc(pr.description || p.description) : "");
    return "<li>" + (inner ? "<details><summary>" + line + "</summary>" + inner +
      "</details>" : line) + "</li>";
  });
  return '<ul class="props">' + items.join("") + "</ul>";
};
const opHtml = (method, path, op) => {
  const parts = [];
  if (op.description) parts.push("<p>" + esc(op.description) + "</p>");
  const auth = (op.security || []).map((s) => Object.keys(s).join(" + ") || "none");
  parts.push("<p><b>Auth:</b> " + esc(auth.length ? auth.join(" or ") : "none") + "</p>");
  if (op.parameters) parts.push("<table><tr><th>Parameter</th><th>In</th><th>Description" +
    "</th></tr>" + op.parameters.map((p) => "<tr><td><code>" + esc(p.name) + "</code></td><td>" +
    esc(p.in) + "</td><td>" + esc(p.description || "") + "</td></tr>").join("") + "</table>");
  const body = op.requestBody && op.requestBody.content["application/json"];
  if (body) {
    parts.push("<p><b>Request body</b> (" + esc(typeOf(body.schema)) + ")</p>" +
      schemaHtml(body.schema, 0, []) + "<details><summary>JSON schema</summary><pre>" +
      esc(JSON.stringify(resolve(body.schema)[0], null, 2)) + "</pre></details>");
  }
  const rows = Object.entries(op.responses || {}).map(([code, r]) => "<tr><td>" + esc(code) +
    "</td><td>" + esc(r.description) + "</td><td>" + esc(Object.keys(r.content || {})
    .join(", ")) + "</td></tr>");
  parts.push("<table><tr><th>Status</th><th>Meaning</th><th>Content</th></tr>" +
    rows.join("") + "</table>");
  return '<details class="op"><summary><span class="m ' + esc(method) + '">' +
    esc(method.toUpperCase()) + "</span><code>" + esc(path) + "</code> " +
    esc(op.summary || "") + '</summary><div class="body">' + parts.join("") + "</div></details>";
};
const render = () => {
  document.getElementById("version").textContent = "version " + spec.info.version;
  const groups = {};
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ["Other"])[0];
      (groups[tag] = groups[tag] || []).push(opHtml(method, path, op));
    }
  }
  const order = (spec.tags || []).map((t) => t.name);
  document.getElementById("ops").innerHTML = order.filter((t) => groups[t]).map((t) =>
    "<h2>" + esc(t) + "</h2>" + groups[t].join("")).join("");
};
fetch("/openapi.json").then((r) => r.json()).then((s) => { spec = s; render(); })
  .catch((e) => { document.getElementById("ops").textContent = "Could not load: " + e; });
"""

PAGE = (
    "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
    "<meta name='viewport' content='width=device-width,initial-scale=1'>"
    "<title>qwen-free-api API</title><style>" + CSS + "</style></head><body>"
    "<header><h1>qwen-free-api API</h1><p><span id='version'></span> · the machine-readable "
    "document is <a style='color:#9cf' href='/openapi.json'>/openapi.json</a></p></header>"
    "<main id='ops'><p>Loading /openapi.json…</p></main>"
    "<script>" + JS + "</script></body></html>"
)

routes = [
    Route("/openapi.json", openapi, methods=["GET"]),
    Route("/docs", docs, methods=["GET"]),
]
