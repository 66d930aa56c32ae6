"""Anthropic Messages requests: wire models and their translation into a ChatRequest.

Content blocks are read as plain dicts: `text`, `tool_use` (assistant) and `tool_result` (user)
carry meaning; `thinking` / `redacted_thinking` are dropped from the history (the upstream keeps
no signatures); `image` and `document` blocks of user turns and tool results become the
message's attachments (dialects.media.anthropic_block); any other kind is kept in the prompt as
its JSON, so an agent's session never breaks on a new block kind.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_free_api.chat import Attachment, ChatRequest, Message, Tool, ToolCall, ToolChoice
from qwen_free_api.dialects import first_error
from qwen_free_api.dialects.media import anthropic_block
from qwen_free_api.errors import BadRequest
from qwen_free_api.tool_prompt import fold

Block = dict[str, Any]
MEDIA = frozenset({"image", "document"})
DROPPED = frozenset({"thinking", "redacted_thinking"})
# Claude Code puts this line first in `system`; it is billing metadata, not an instruction.
BILLING_PREFIX = "x-anthropic-billing-header:"
Mode = Literal["none", "auto", "required"]
CHOICES: dict[str, Mode] = {"auto": "auto", "any": "required", "tool": "required", "none": "none"}


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")


Wire = TypeVar("Wire", bound=WireModel)


class WireMessage(WireModel):
    role: str
    content: str | list[Block]


class CountTokensRequest(WireModel):
    """What `/v1/messages/count_tokens` takes: a Messages request without the answer's knobs."""

    model: str = Field(min_length=1)
    messages: list[WireMessage] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[Block] | None = None
    tool_choice: Block | None = None
    thinking: Block | None = None
    stop_sequences: list[str] | None = None


class MessagesRequest(CountTokensRequest):
    max_tokens: int  # required by Anthropic; any size is accepted
    stream: bool = False


def parse(model: type[Wire], body: Any) -> Wire:
    """Validate a request body into `model`; a bad body is a 400 invalid_request_error."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object", param="body")
    try:
        return model.model_validate(body)
    except ValidationError as error:
        first = first_error(error)
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise BadRequest(f"{field}: {first['msg']}", param=field) from None


def to_chat(wire: CountTokensRequest) -> ChatRequest:
    system = _system(wire.system)
    messages = [Message("system", system)] if system else []
    for index, message in enumerate(wire.messages):
        messages.extend(_messages(index, message))
    thinking, budget = _thinking(wire.thinking)
    tools, search = _tools(wire.tools or [])
    return ChatRequest(
        model=wire.model,
        messages=tuple(messages),
        thinking=thinking,
        thinking_budget=budget,
        search=search,
        tools=tools,
        tool_choice=_tool_choice(wire.tool_choice),
        stop=tuple(s for s in wire.stop_sequences or [] if s),
    )


def counted_text(chat: ChatRequest) -> str:
    """What count_tokens counts: system, messages (tool turns as sent) and tool definitions."""
    parts = [fold(message) for message in chat.messages]
    for tool in chat.tools:
        spec = {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
        parts.append(json.dumps(spec, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(parts)


def _system(system: str | list[Block] | None) -> str:
    if system is None or isinstance(system, str):
        return system or ""
    texts = _texts(system, "system")
    return "\n".join(t for t in texts if not t.startswith(BILLING_PREFIX))


def _texts(blocks: list[Block], where: str) -> list[str]:
    return [t for n, block in enumerate(blocks) if (t := _text(block, f"{where}.{n}")) is not None]


def _text(block: Block, param: str) -> str | None:
    """A block as prompt text: thinking dropped (None), media refused (system and assistant
    turns take none), and blocks of kinds this gateway has no use for (tool_reference,
    search_result, …) kept as their JSON."""
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        text: str = block["text"]
        return text
    if kind in DROPPED:
        return None
    if kind in MEDIA:
        raise BadRequest(f"`{kind}` blocks belong in user turns and tool results", param=param)
    kept = {key: value for key, value in block.items() if key != "cache_control"}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":"))


def _messages(index: int, message: WireMessage) -> list[Message]:
    where = f"messages.{index}.content"
    content = message.content
    if message.role == "system":
        text = content if isinstance(content, str) else "\n".join(_texts(content, where))
        return [Message("system", text)]
    if message.role == "assistant":
        return _assistant(content, where)
    if message.role == "user":
        return _user(content, where)
    raise BadRequest(f"unknown role {message.role!r}", param=f"messages.{index}.role")


def _assistant(content: str | list[Block], where: str) -> list[Message]:
    if isinstance(content, str):
        return [Message("assistant", content)]
    texts: list[str] = []
    calls: list[ToolCall] = []
    for number, block in enumerate(content):
        if block.get("type") == "tool_use":
            calls.append(_tool_use(block, f"{where}.{number}"))
        elif (text := _text(block, f"{where}.{number}")) is not None:
            texts.append(text)
    text = "\n".join(texts)
    return [Message("assistant", text, tuple(calls))] if text or calls else []


def _tool_use(block: Block, param: str) -> ToolCall:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(call_id, str) or not isinstance(name, str):
        raise BadRequest("a tool_use block needs a string `id` and `name`", param=param)
    return ToolCall(call_id, name, json.dumps(arguments, ensure_ascii=False))


def _collect(
    blocks: list[Any], where: str, apart: frozenset[str] = frozenset()
) -> tuple[str, tuple[Attachment, ...]]:
    """The text and the images and documents of blocks (kinds in `apart` are read elsewhere)."""
    texts: list[str] = []
    media: list[Attachment] = []
    for number, block in enumerate(blocks):
        param = f"{where}.{number}"
        if not isinstance(block, dict):
            raise BadRequest("every content block must be an object", param=param)
        if block.get("type") in apart:
            continue
        if (found := anthropic_block(block, param)) is not None:
            media.append(found)
        elif (text := _text(block, param)) is not None:
            texts.append(text)
    return "\n".join(texts), tuple(media)


def _user(content: str | list[Block], where: str) -> list[Message]:
    if isinstance(content, str):
        return [Message("user", content)]
    results = [
        _tool_result(block, f"{where}.{number}")
        for number, block in enumerate(content)
        if block.get("type") == "tool_result"
    ]
    text, media = _collect(content, where, apart=frozenset({"tool_result"}))
    if text or media or not results:
        return [*results, Message("user", text, attachments=media)]
    return results


def _tool_result(block: Block, param: str) -> Message:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str):
        raise BadRequest("a tool_result block needs a string `tool_use_id`", param=param)
    content = block.get("content")
    media: tuple[Attachment, ...] = ()
    if isinstance(content, list):
        text, media = _collect(content, f"{param}.content")
    else:
        text = content if isinstance(content, str) else ""
    failed = block.get("is_error") is True
    return Message("tool", text, tool_call_id=call_id, is_error=failed, attachments=media)


def _thinking(thinking: Block | None) -> tuple[bool | None, int | None]:
    kind = (thinking or {}).get("type")
    if kind == "enabled":
        budget = (thinking or {}).get("budget_tokens")
        return True, budget if isinstance(budget, int) else None
    if kind == "disabled":
        return False, None
    return None, None  # adaptive, or not asked: the model's default


def _tools(specs: list[Block]) -> tuple[tuple[Tool, ...], bool]:
    """Client tools, and whether a web search server tool asks for upstream search."""
    tools: list[Tool] = []
    search = False
    for index, spec in enumerate(specs):
        kind = spec.get("type")
        if kind not in (None, "custom") and "input_schema" not in spec:
            search = search or str(kind).startswith("web_search")
            continue  # a server tool (web_search, bash, text_editor, …): nothing to call here
        name, schema = spec.get("name"), spec.get("input_schema")
        if not isinstance(name, str) or not name:
            raise BadRequest("every tool needs a `name`", param=f"tools.{index}.name")
        description = spec.get("description")
        tools.append(
            Tool(
                name,
                description if isinstance(description, str) else "",
                schema if isinstance(schema, dict) else {},
            )
        )
    return tuple(tools), search


def _tool_choice(choice: Block | None) -> ToolChoice:
    kind = (choice or {}).get("type")
    if kind != "tool":
        return ToolChoice(CHOICES.get(str(kind), "auto"))
    name = (choice or {}).get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("tool_choice of type `tool` needs a `name`", param="tool_choice.name")
    return ToolChoice("required", name)
