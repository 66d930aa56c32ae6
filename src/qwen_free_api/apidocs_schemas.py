"""What /openapi.json says about each handler: request bodies, auth, answers and errors.

Request bodies come from the pydantic wire models the dialects validate with; only the
handlers that read raw JSON (token check, admin) get small hand-written schemas. Handlers
are keyed by `module.function`, so this table never imports the app (no import cycle) and a
handler missing from it is still documented, just plainly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from qwen_free_api.dialects import anthropic_wire, gemini_wire, images, openai_wire, responses_wire

REF = "#/components/schemas/"
UPSTREAM = (400, 401, 404, 413, 429, 502, 503, 504)
LOCAL = (400, 401, 413)
ADMIN = (400, 401, 404, 409, 413)
STATUS_TEXT = {
    400: "Invalid request: a bad body or parameter, a context too long, filtered content",
    401: "Missing or invalid key, or the Qwen credential was rejected",
    404: "Unknown model or resource, or the admin API is off",
    409: "The account comes from configuration; disable it instead",
    413: "The request body is larger than the server accepts",
    429: "Rate limited upstream; see Retry-After",
    502: "The upstream failed or answered something unreadable",
    503: "No usable credential, the upstream blocked us, or the server is shutting down",
    504: "The upstream did not answer in time",
}

SECURITY_SCHEMES: dict[str, Any] = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "Pool mode: a client key from QFA_API_KEYS. Seed mode: your Qwen "
        "credential(s) (cn ticket or intl JWT), comma-separated.",
    },
    "anthropicKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
    "googleKey": {"type": "apiKey", "in": "header", "name": "x-goog-api-key"},
    "googleKeyQuery": {"type": "apiKey", "in": "query", "name": "key"},
    "adminBearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin key (QFA_ADMIN_KEY).",
    },
    "adminKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-admin-key",
        "description": "The admin key (QFA_ADMIN_KEY).",
    },
}
OPENAI_AUTH = ("bearer",)
ANTHROPIC_AUTH = ("anthropicKey", "bearer")
GEMINI_AUTH = ("googleKey", "googleKeyQuery", "bearer")
ADMIN_AUTH = ("adminBearer", "adminKey")

_STRING = {"type": "string"}
ERROR_SCHEMAS: dict[str, Any] = {
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": _STRING,
                    "type": _STRING,
                    "code": {"type": ["string", "integer", "null"]},
                    "param": {"type": ["string", "null"]},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error"],
        "properties": {
            "type": {"const": "error"},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": _STRING, "message": _STRING},
            },
        },
    },
    "GeminiError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "status"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": _STRING,
                    "status": _STRING,
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    },
}
HAND_SCHEMAS: dict[str, Any] = {
    "TokenBody": {
        "type": "object",
        "required": ["token"],
        "properties": {
            "token": {
                "type": "string",
                "minLength": 1,
                "description": "A Qwen credential: cn ticket or intl JWT.",
            }
        },
    },
}
WIRE_MODELS: dict[str, tuple[str, type[BaseModel]]] = {
    "OpenAIChatCompletionRequest": ("OpenAI", openai_wire.ChatCompletionRequest),
    "ImageImageRequest": ("Image", images.ImageRequest),
    "AnthropicMessagesRequest": ("Anthropic", anthropic_wire.MessagesRequest),
    "AnthropicCountTokensRequest": ("Anthropic", anthropic_wire.CountTokensRequest),
    "GeminiGenerateContentRequest": ("Gemini", gemini_wire.GenerateContentRequest),
    "GeminiCountTokensRequest": ("Gemini", gemini_wire.CountTokensRequest),
    "ResponsesResponsesRequest": ("Responses", responses_wire.ResponsesRequest),
}


def component_schemas() -> dict[str, Any]:
    """Every schema /openapi.json refers to; a model's `$defs` become siblings, prefixed."""
    found: dict[str, Any] = {**ERROR_SCHEMAS, **HAND_SCHEMAS}
    for name, (prefix, model) in WIRE_MODELS.items():
        schema = model.model_json_schema(ref_template=REF + prefix + "{model}")
        for sub, definition in schema.pop("$defs", {}).items():
            found[prefix + sub] = definition
        found[name] = schema
    return found


@dataclass(frozen=True)
class Op:
    """How one handler is documented."""

    summary: str
    tag: str
    auth: tuple[str, ...] = ()
    auth_optional: bool = False
    body: str | None = None
    success: tuple[str, ...] = ("application/json",)
    status: int = 200
    errors: str | None = "OpenAIError"
    statuses: tuple[int, ...] = UPSTREAM
    description: str = ""
    params: dict[str, str] = field(default_factory=dict)
    rename: dict[str, str] = field(default_factory=dict)


STREAMS = ("application/json", "text/event-stream")
_STREAM_NOTE = "With `stream: true` the answer is a `text/event-stream`; otherwise JSON."
_GEMINI_NOTE = (
    "Field names are accepted in camelCase (as Google's SDKs send) or snake_case (as shown)."
)
_MODEL = {"target": "model"}
_ACCOUNT = {"ident": "The account id from GET /v1/accounts"}
_SHARED_MODELS = (
    "Shared by three dialects: an `x-goog-api-key` header or `key` query gives Gemini's list, "
    "an `x-api-key` or `anthropic-version` header Anthropic's, anything else OpenAI's. "
    "A key is optional in seed mode."
)

_APP = "qwen_free_api.app."
_D = "qwen_free_api.dialects."
OPS: dict[str, Op] = {
    _APP + "ping": Op("Liveness check", "Service", success=("text/plain",), errors=None),
    _APP + "token_check": Op(
        "Check a Qwen credential",
        "Service",
        OPENAI_AUTH,
        auth_optional=True,
        body="TokenBody",
        description="Asks the upstream whether a credential is live. A key is needed "
        "only in pool mode.",
    ),
    _APP + "list_models": Op(
        "List models",
        "Models",
        OPENAI_AUTH + ANTHROPIC_AUTH[:1] + GEMINI_AUTH[:2],
        auth_optional=True,
        statuses=UPSTREAM,
        description=_SHARED_MODELS,
    ),
    _APP + "get_model": Op(
        "Get a model",
        "Models",
        OPENAI_AUTH + GEMINI_AUTH[:2],
        auth_optional=True,
        description="Gemini's model object when the key is Google's, else OpenAI's.",
        rename=_MODEL,
        params={"model": "Model id, e.g. qwen3-max"},
    ),
    _D + "openai.chat_completions": Op(
        "Create a chat completion (OpenAI)",
        "OpenAI",
        OPENAI_AUTH,
        body="OpenAIChatCompletionRequest",
        success=STREAMS,
        description=_STREAM_NOTE,
    ),
    _D + "responses.create_response": Op(
        "Create a response (OpenAI Responses)",
        "OpenAI",
        OPENAI_AUTH,
        body="ResponsesResponsesRequest",
        success=STREAMS,
        description=_STREAM_NOTE,
    ),
    _D + "images.generations": Op(
        "Generate images",
        "OpenAI",
        OPENAI_AUTH,
        body="ImageImageRequest",
    ),
    _D + "anthropic.messages": Op(
        "Create a message (Anthropic)",
        "Anthropic",
        ANTHROPIC_AUTH,
        body="AnthropicMessagesRequest",
        success=STREAMS,
        errors="AnthropicError",
        description=_STREAM_NOTE,
    ),
    _D + "anthropic.count_tokens": Op(
        "Count tokens (Anthropic)",
        "Anthropic",
        ANTHROPIC_AUTH,
        body="AnthropicCountTokensRequest",
        errors="AnthropicError",
        statuses=LOCAL,
    ),
    _D + "gemini.list_models": Op(
        "List models (Gemini)",
        "Gemini",
        GEMINI_AUTH,
        auth_optional=True,
        errors="GeminiError",
    ),
    _D + "gemini.get_model": Op(
        "Get a model (Gemini)",
        "Gemini",
        GEMINI_AUTH,
        auth_optional=True,
        errors="GeminiError",
        rename=_MODEL,
        params={"model": "Model name, e.g. qwen3-max"},
    ),
    "qwen_free_api.admin.list_accounts": Op(
        "List pool accounts",
        "Admin",
        ADMIN_AUTH,
        statuses=ADMIN,
        description="States: live, cooling, disabled, paused, expired; never the secret.",
    ),
    "qwen_free_api.admin.add_account": Op(
        "Add an account to the pool",
        "Admin",
        ADMIN_AUTH,
        body="TokenBody",
        status=201,
        statuses=ADMIN,
    ),
    "qwen_free_api.admin.remove_account": Op(
        "Remove an added account",
        "Admin",
        ADMIN_AUTH,
        statuses=ADMIN,
        params=_ACCOUNT,
    ),
    "qwen_free_api.admin.enable_account": Op(
        "Enable an account",
        "Admin",
        ADMIN_AUTH,
        statuses=ADMIN,
        params=_ACCOUNT,
    ),
    "qwen_free_api.admin.disable_account": Op(
        "Disable an account",
        "Admin",
        ADMIN_AUTH,
        statuses=ADMIN,
        params=_ACCOUNT,
    ),
    "qwen_free_api.pages.welcome": Op(
        "Welcome page",
        "Service",
        success=("text/html",),
        errors=None,
    ),
    "qwen_free_api.pages.status": Op("Pool and server summary", "Service", errors=None),
    "qwen_free_api.observe_metrics.metrics_endpoint": Op(
        "Prometheus metrics",
        "Service",
        ADMIN_AUTH,
        auth_optional=True,
        success=("text/plain",),
        statuses=(401, 404),
        description="The admin key is needed only with QFA_METRICS_REQUIRE_ADMIN; "
        "404 when the app runs without the metrics middleware.",
    ),
    "qwen_free_api.apidocs.openapi": Op("This OpenAPI document", "Service", errors=None),
    "qwen_free_api.apidocs.docs": Op(
        "API documentation page",
        "Service",
        success=("text/html",),
        errors=None,
    ),
}
"""Operations of the Gemini `models/{model}:{action}` handler, one per action."""
GEMINI_OPS: dict[str, Op] = {
    "generateContent": Op(
        "Generate content (Gemini)",
        "Gemini",
        GEMINI_AUTH,
        body="GeminiGenerateContentRequest",
        errors="GeminiError",
        description=_GEMINI_NOTE,
    ),
    "streamGenerateContent": Op(
        "Stream generated content (Gemini)",
        "Gemini",
        GEMINI_AUTH,
        body="GeminiGenerateContentRequest",
        success=STREAMS,
        errors="GeminiError",
        description="With `?alt=sse` a `text/event-stream`; otherwise a streamed JSON "
        "array. " + _GEMINI_NOTE,
    ),
    "countTokens": Op(
        "Count tokens (Gemini)",
        "Gemini",
        GEMINI_AUTH,
        body="GeminiCountTokensRequest",
        errors="GeminiError",
        statuses=(400, 401, 404, 413),  # 404: a model name no route matches (a line break)
        description=_GEMINI_NOTE,
    ),
}
GEMINI_ACTION_HANDLER = _D + "gemini.model_action"
