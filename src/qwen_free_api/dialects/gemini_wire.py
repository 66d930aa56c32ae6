"""Gemini generateContent requests: wire models and their translation into a ChatRequest.

Google's JSON accepts every field in lowerCamelCase and in snake_case. The body is normalised to
snake_case once (`snake_keys`), so the models below name each field one way only. Values that
belong to the client (function arguments and results, schemas) keep their keys as sent.
`inline_data` / `file_data` parts, and those of a functionResponse's `parts`, become the
attachments of the message they belong to (dialects.media.gemini_part).
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_free_api.chat import Attachment, ChatRequest, Message, Role, Tool, ToolCall, ToolChoice
from qwen_free_api.dialects import first_error
from qwen_free_api.dialects.gemini_schema import from_openapi, lower_types
from qwen_free_api.dialects.media import gemini_part
from qwen_free_api.errors import BadRequest

# Keys whose values are the client's own data: their keys are never renamed.
OPAQUE = frozenset(
    {"args", "response", "parameters", "parameters_json_schema", "response_schema"}
    | {"response_json_schema"}
)
ROLES: dict[str, Role] = {
    "user": "user",
    "model": "assistant",
    "assistant": "assistant",
    "function": "user",
    "tool": "user",
    "system": "system",
}
Mode = Literal["none", "auto", "required"]
CALLING_MODES: dict[str, Mode] = {
    "AUTO": "auto",
    "MODE_UNSPECIFIED": "auto",
    "VALIDATED": "auto",
    "ANY": "required",
    "NONE": "none",
}
THINKING_LEVELS = {"LOW": True, "MEDIUM": True, "HIGH": True, "MINIMAL": False}
EMPTY_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_CAMEL_BOUNDARY = re.compile(r"([a-z0-9])([A-Z])")


def snake_keys(value: Any) -> Any:
    """`value` with every structural key in snake_case (opaque values left as they are)."""
    if isinstance(value, list):
        return [snake_keys(item) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = _CAMEL_BOUNDARY.sub(r"\1_\2", key).lower() if isinstance(key, str) else key
        out[name] = item if name in OPAQUE else snake_keys(item)
    return out


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionCall(WireModel):
    name: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None


class FunctionResponse(WireModel):
    name: str = ""
    response: dict[str, Any] = Field(default_factory=dict)
    id: str | None = None
    parts: list[dict[str, Any]] = Field(default_factory=list)  # inline_data / file_data media


class Part(WireModel):
    text: str | None = None
    thought: bool = False
    function_call: FunctionCall | None = None
    function_response: FunctionResponse | None = None
    inline_data: dict[str, Any] | None = None
    file_data: dict[str, Any] | None = None


class Content(WireModel):
    role: str | None = None
    parts: list[Part] = Field(default_factory=list)


class FunctionDeclaration(WireModel):
    name: str = Field(min_length=1)
    description: str | None = None
    parameters: dict[str, Any] | None = None
    parameters_json_schema: dict[str, Any] | None = None


class ToolEntry(WireModel):
    function_declarations: list[FunctionDeclaration] = Field(default_factory=list)
    google_search: dict[str, Any] | None = None
    google_search_retrieval: dict[str, Any] | None = None


class FunctionCallingConfig(WireModel):
    mode: str | None = None
    allowed_function_names: list[str] = Field(default_factory=list)


class ToolConfig(WireModel):
    function_calling_config: FunctionCallingConfig | None = None


class ThinkingConfig(WireModel):
    include_thoughts: bool = False
    thinking_budget: int | None = None
    thinking_level: str | None = None


class GenerationConfig(WireModel):
    stop_sequences: list[str] = Field(default_factory=list)
    max_output_tokens: int | None = None
    response_mime_type: str | None = None
    response_schema: dict[str, Any] | None = None
    response_json_schema: dict[str, Any] | None = None
    thinking_config: ThinkingConfig | None = None


class GenerateContentRequest(WireModel):
    contents: list[Content] = Field(default_factory=list)
    system_instruction: Content | str | None = None
    tools: list[ToolEntry] = Field(default_factory=list)
    tool_config: ToolConfig | None = None
    generation_config: GenerationConfig | None = None

    @property
    def include_thoughts(self) -> bool:
        config = self.generation_config
        return bool(config and config.thinking_config and config.thinking_config.include_thoughts)


class CountTokensRequest(GenerateContentRequest):
    """`contents` (with systemInstruction and tools, leniently), or a whole request."""

    generate_content_request: GenerateContentRequest | None = None


def parse(model: type[WireModel], body: Any) -> Any:
    """Validate a request body (any key style) into `model`; a bad body is a 400."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", param="body")
    try:
        return model.model_validate(snake_keys(body))
    except ValidationError as error:
        first = first_error(error)
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"invalid `{field}`: {first['msg']}", param=field) from None


def to_chat(model: str, wire: GenerateContentRequest) -> ChatRequest:
    if not wire.contents:
        raise BadRequest("`contents` must not be empty", param="contents")
    messages = [*_system(wire.system_instruction), *_history(wire.contents)]
    config = wire.generation_config or GenerationConfig()
    thinking, budget = _thinking(config.thinking_config)
    tools, search = _tools(wire.tools)
    choice, tools = _tool_choice(wire.tool_config, tools)
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        thinking=thinking,
        thinking_budget=budget,
        search=search,
        tools=tools,
        tool_choice=choice,
        json_schema=_json_mode(config),
        stop=tuple(s for s in config.stop_sequences if s),
    )


def _system(instruction: Content | str | None) -> list[Message]:
    if instruction is None:
        return []
    if isinstance(instruction, str):
        text = instruction
    else:
        text = "\n".join(p.text for p in instruction.parts if p.text is not None and not p.thought)
    return [Message("system", text)] if text else []


class _CallIds:
    """Ids of the calls in a history: the client's, or generated ones that stay stable."""

    def __init__(self) -> None:
        self.count = 0
        self.open: dict[str, list[str]] = {}  # tool name → ids of calls not yet answered

    def called(self, call: FunctionCall) -> str:
        call_id = call.id or f"call_{self.count}"
        self.count += 1
        self.open.setdefault(call.name, []).append(call_id)
        return call_id

    def answered(self, result: FunctionResponse) -> str:
        pending = self.open.get(result.name, [])
        if result.id:
            if result.id in pending:
                pending.remove(result.id)
            return result.id
        return pending.pop(0) if pending else f"call_{result.name or 'unknown'}"


def _history(contents: list[Content]) -> list[Message]:
    ids = _CallIds()
    messages: list[Message] = []
    for index, content in enumerate(contents):
        role = ROLES.get((content.role or "user").lower())
        if role is None:
            raise BadRequest(f"unknown role {content.role!r}", param=f"contents.{index}.role")
        messages.extend(_turn(index, role, content.parts, ids))
    return messages


def _turn(index: int, role: Role, parts: list[Part], ids: _CallIds) -> list[Message]:
    texts: list[str] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    media: list[Attachment] = []
    for part_index, part in enumerate(parts):
        param = f"contents.{index}.parts.{part_index}"
        found = gemini_part(part.inline_data, part.file_data, param)
        if found is not None:
            media.append(found)
        elif part.function_call is not None:
            call = part.function_call
            arguments = json.dumps(call.args, ensure_ascii=False)
            calls.append(ToolCall(ids.called(call), call.name, arguments))
        elif part.function_response is not None:
            results.append(_result(part.function_response, ids, param))
        elif part.text is not None and not part.thought:
            texts.append(part.text)
    if role == "assistant":
        text = "".join(texts)
        reply = Message("assistant", text, tuple(calls), attachments=tuple(media))
        return [reply] if text or calls or media else []
    text = "\n".join(texts)
    if text or media:
        return [*results, Message(role, text, attachments=tuple(media))]
    return results


def _result(result: FunctionResponse, ids: _CallIds, param: str) -> Message:
    response = result.response
    failed = "error" in response and "output" not in response
    only = next(iter(response.values())) if len(response) == 1 else None
    if isinstance(only, str) and ("output" in response or failed):
        text = only
    else:
        text = json.dumps(response, ensure_ascii=False)
    call_id = ids.answered(result)
    where = f"{param}.functionResponse.parts"
    found = (
        gemini_part(p.get("inline_data"), p.get("file_data"), f"{where}.{n}")
        for n, p in enumerate(result.parts)
    )
    media = tuple(a for a in found if a is not None)
    name = result.name or None
    return Message(
        "tool", text, tool_call_id=call_id, name=name, is_error=failed, attachments=media
    )


def _thinking(config: ThinkingConfig | None) -> tuple[bool | None, int | None]:
    if config is None:
        return None, None
    budget = config.thinking_budget
    if budget is not None:
        if budget == 0:
            return False, None
        return (True, budget) if budget > 0 else (None, None)
    return THINKING_LEVELS.get((config.thinking_level or "").upper()), None


def _tools(entries: list[ToolEntry]) -> tuple[tuple[Tool, ...], bool]:
    tools: list[Tool] = []
    search = False
    for entry in entries:
        search = search or entry.google_search is not None
        search = search or entry.google_search_retrieval is not None
        for declaration in entry.function_declarations:
            if declaration.parameters_json_schema is not None:
                parameters = lower_types(declaration.parameters_json_schema)
            elif declaration.parameters is not None:
                parameters = from_openapi(declaration.parameters)
            else:
                parameters = dict(EMPTY_PARAMETERS)
            tools.append(Tool(declaration.name, declaration.description or "", parameters))
    return tuple(tools), search


def _tool_choice(
    config: ToolConfig | None, tools: tuple[Tool, ...]
) -> tuple[ToolChoice, tuple[Tool, ...]]:
    calling = config.function_calling_config if config else None
    if calling is None:
        return ToolChoice(), tools
    raw = (calling.mode or "AUTO").upper()
    mode = CALLING_MODES.get(raw)
    if mode is None:
        raise BadRequest(
            f"unknown function calling mode {calling.mode!r}",
            param="tool_config.function_calling_config.mode",
        )
    allowed = calling.allowed_function_names
    if allowed and mode != "none":
        tools = tuple(tool for tool in tools if tool.name in allowed)
    if mode == "required":
        return ToolChoice("required", allowed[0] if len(allowed) == 1 else None), tools
    return ToolChoice(mode), tools


def _json_mode(config: GenerationConfig) -> dict[str, Any] | None:
    mime = (config.response_mime_type or "").split(";")[0].strip().lower()
    if mime != "application/json":
        return None
    if config.response_json_schema is not None:
        schema: dict[str, Any] = lower_types(config.response_json_schema)
        return schema
    if config.response_schema is not None:
        converted: dict[str, Any] = from_openapi(config.response_schema)
        return converted
    return {}


def counted_text(wire: GenerateContentRequest) -> tuple[str, int]:
    """What countTokens counts: every text, call, result and tool, and the media parts."""
    texts: list[str] = []
    media = 0
    contents = list(wire.contents)
    if isinstance(wire.system_instruction, Content):
        contents.append(wire.system_instruction)
    elif wire.system_instruction:
        texts.append(wire.system_instruction)
    for content in contents:
        for part in content.parts:
            if part.text is not None:
                texts.append(part.text)
            if part.function_call is not None:
                texts.append(part.function_call.name + json.dumps(part.function_call.args))
            if part.function_response is not None:
                response = part.function_response
                texts.append(response.name + json.dumps(response.response, ensure_ascii=False))
                media += sum(
                    1 for p in response.parts if p.get("inline_data") or p.get("file_data")
                )
            media += part.inline_data is not None or part.file_data is not None
    tools, _ = _tools(wire.tools)
    for tool in tools:
        schema = json.dumps(tool.parameters, ensure_ascii=False)
        texts.append(f"{tool.name}\n{tool.description}\n{schema}")
    return "\n".join(texts), media
