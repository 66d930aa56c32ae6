"""OpenAI Chat Completions requests: wire models and their translation to a ChatRequest."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_free_api.chat import Attachment, ChatRequest, Message, Role, Tool, ToolCall, ToolChoice
from qwen_free_api.dialects import first_error
from qwen_free_api.dialects.media import OPENAI_MEDIA, openai_part
from qwen_free_api.errors import BadRequest

ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(WireModel):
    include_usage: bool = False


class WireFunctionCall(WireModel):
    name: str
    arguments: str | dict[str, Any] = "{}"


class WireToolCall(WireModel):
    id: str = ""
    type: str = "function"
    function: WireFunctionCall


class ChatMessage(WireModel):
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[WireToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    function_call: WireFunctionCall | None = None  # legacy


class ChatCompletionRequest(WireModel):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    reasoning_effort: str | None = None
    enable_thinking: bool | None = None
    thinking_budget: int | None = None
    enable_search: bool | None = None
    search_type: str | None = None
    web_search_options: dict[str, Any] | None = None
    conversation_id: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    functions: list[dict[str, Any]] | None = None  # legacy
    function_call: str | dict[str, Any] | None = None  # legacy
    response_format: dict[str, Any] | None = None
    stop: str | list[str] | None = None


def parse_request(body: Any) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(body)
    except ValidationError as error:
        first = first_error(error)
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"invalid `{field}`: {first['msg']}", param=field) from None


def to_chat(wire: ChatCompletionRequest) -> ChatRequest:
    messages = tuple(_message(i, m) for i, m in enumerate(wire.messages))
    effort = (wire.reasoning_effort or "").lower()
    thinking = wire.enable_thinking
    if thinking is None and effort:
        thinking = effort not in ("none", "minimal")
    search_type = (wire.search_type or "").lower()
    stop = [wire.stop] if isinstance(wire.stop, str) else wire.stop or []
    return ChatRequest(
        model=wire.model,
        messages=messages,
        thinking=thinking,
        thinking_budget=wire.thinking_budget,
        search=bool(wire.enable_search or search_type or wire.web_search_options is not None),
        deep_search=search_type in ("deep", "depth", "deep_search"),
        conversation_id=wire.conversation_id,
        tools=_tools(wire),
        tool_choice=_tool_choice(wire.tool_choice or wire.function_call),
        json_schema=_json_schema(wire.response_format),
        stop=tuple(s for s in stop if s),
    )


def _tools(wire: ChatCompletionRequest) -> tuple[Tool, ...]:
    specs = [t.get("function") for t in wire.tools or [] if t.get("type", "function") == "function"]
    specs += wire.functions or []
    tools = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise BadRequest("every tool needs a function name", param=f"tools.{index}")
        parameters = spec.get("parameters")
        tools.append(
            Tool(
                spec["name"],
                str(spec.get("description") or ""),
                parameters if isinstance(parameters, dict) else {},
            )
        )
    return tuple(tools)


def _tool_choice(choice: str | dict[str, Any] | None) -> ToolChoice:
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") or choice.get("name")
        return ToolChoice("required", name if isinstance(name, str) else None)
    if choice == "none":
        return ToolChoice("none")
    if choice == "required":
        return ToolChoice("required")
    return ToolChoice("auto")


def _json_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    kind = (response_format or {}).get("type")
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        schema = (response_format or {}).get("json_schema") or {}
        found = schema.get("schema") if isinstance(schema, dict) else None
        return found if isinstance(found, dict) else {}
    return None


def _message(index: int, message: ChatMessage) -> Message:
    role = ROLES.get(message.role)
    if role is None:
        raise BadRequest(f"unknown role {message.role!r}", param=f"messages.{index}.role")
    text = _content_text(index, message.content)
    media = _content_media(index, message.content)
    calls = [*(message.tool_calls or [])]
    if message.function_call is not None:
        calls.append(WireToolCall(id=f"call_{index}", function=message.function_call))
    if role == "tool":
        call_id = message.tool_call_id or (
            f"call_{index - 1}" if message.role == "function" else None
        )
        return Message(role, text, tool_call_id=call_id, name=message.name, attachments=media)
    tool_calls = tuple(
        ToolCall(c.id or f"call_{index}_{n}", c.function.name, _arguments(c.function.arguments))
        for n, c in enumerate(calls)
    )
    return Message(role, text, tool_calls=tool_calls, attachments=media)


def _arguments(arguments: str | dict[str, Any]) -> str:
    if isinstance(arguments, dict):
        return json.dumps(arguments, ensure_ascii=False)
    return arguments or "{}"


def _content_text(index: int, content: str | list[dict[str, Any]] | None) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    texts: list[str] = []
    for part_index, part in enumerate(content):
        kind = part.get("type")
        if kind in ("text", "input_text") and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind not in OPENAI_MEDIA:
            raise BadRequest(
                f"content part type {kind!r} is not supported",
                param=f"messages.{index}.content.{part_index}",
            )
    return "\n".join(texts)


def _content_media(
    index: int, content: str | list[dict[str, Any]] | None
) -> tuple[Attachment, ...]:
    if content is None or isinstance(content, str):
        return ()
    found = (openai_part(part, f"messages.{index}.content.{n}") for n, part in enumerate(content))
    return tuple(a for a in found if a is not None)
