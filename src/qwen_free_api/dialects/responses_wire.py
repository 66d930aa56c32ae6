"""OpenAI Responses requests: wire models and their translation to a ChatRequest.

Input items become canonical messages: `developer` turns and `instructions` become system
messages, `function_call` items (merged into the assistant turn they follow) become tool calls
and `function_call_output` items tool results. Function tools nested in a `namespace` tool are
offered to the model under one flat name and given back as `{namespace, name}` (ToolNames).
`input_image` and `input_file` parts, of messages and of function outputs, become the message's
attachments (dialects.media.openai_part).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qwen_free_api.chat import Attachment, ChatRequest, Message, Role, Tool, ToolCall, ToolChoice
from qwen_free_api.dialects import first_error
from qwen_free_api.dialects.media import OPENAI_MEDIA, openai_part
from qwen_free_api.errors import BadRequest

log = logging.getLogger(__name__)

ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}
TEXT_PARTS = ("input_text", "output_text", "text", "summary_text")
IGNORED_ITEMS = ("reasoning",)  # reasoning is the model's own; other unknown items are logged
NO_THINKING = ("none", "minimal")
UNION_BRANCHES = ("str", "int", "float", "bool")


class WireModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReasoningConfig(WireModel):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None  # the deprecated name of `summary`


class ResponsesRequest(WireModel):
    model: str = Field(min_length=1)
    input: str | list[dict[str, Any]] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    reasoning: ReasoningConfig | None = None
    text: dict[str, Any] | None = None
    previous_response_id: str | None = None
    stream: bool = False
    store: bool | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    metadata: dict[str, Any] | None = None


def parse_request(body: Any) -> ResponsesRequest:
    try:
        return ResponsesRequest.model_validate(body)
    except ValidationError as error:
        first = first_error(error)
        loc = [str(part) for part in first["loc"]]
        # A union's branch names ("input.str", "input.list[dict[str,any]]") are not fields.
        fields = [p for p in loc if p not in UNION_BRANCHES and "[" not in p]
        field_name = ".".join(fields) or "body"
        reason = "wrong type" if len(fields) < len(loc) else first["msg"]
        raise BadRequest(f"invalid `{field_name}`: {reason}", param=field_name) from None


def flat_name(namespace: str, name: str) -> str:
    """The one name the model sees for a function of a namespace (`mcp__server__` + `tool`)."""
    return namespace + name if namespace.endswith("__") else f"{namespace}__{name}"


@dataclass(frozen=True, slots=True)
class ToolNames:
    """Flat tool names of namespaced functions, and the way back to `(namespace, name)`."""

    nested: dict[str, tuple[str, str]] = field(default_factory=dict)  # flat → (namespace, name)
    top: frozenset[str] = frozenset()  # names of functions outside any namespace

    def split(self, name: str) -> tuple[str | None, str]:
        """The namespace and bare name of a called tool, as the client declared it."""
        if name in self.nested:
            return self.nested[name]
        if name not in self.top:
            # A model that dropped the namespace: restore it when only one namespace fits.
            owners = [pair for pair in self.nested.values() if pair[1] == name]
            if len(owners) == 1:
                return owners[0]
        return None, name


@dataclass(frozen=True, slots=True)
class Translated:
    """A Responses request in canonical form, with what rendering the answer needs."""

    chat: ChatRequest
    names: ToolNames
    summary: bool  # render reasoning as a summary (else as raw reasoning text)


def to_chat(wire: ResponsesRequest) -> Translated:
    tools, names, search = _tools(wire.tools or [])
    messages: list[Message] = []
    if wire.instructions:
        messages.append(Message("system", wire.instructions))
    messages.extend(_messages(wire.input))
    if not any(m.role != "system" for m in messages):
        raise BadRequest("`input` must hold at least one message", param="input")
    reasoning = wire.reasoning or ReasoningConfig()
    effort = (reasoning.effort or "").lower()
    summary = (reasoning.summary or reasoning.generate_summary or "").lower()
    chat = ChatRequest(
        model=wire.model,
        messages=tuple(messages),
        thinking=(effort not in NO_THINKING) if effort else None,
        search=search,
        conversation_id=(wire.previous_response_id or "").removeprefix("resp_") or None,
        tools=tools,
        tool_choice=_tool_choice(wire.tool_choice),
        json_schema=_json_schema(wire.text),
    )
    return Translated(chat, names, summary not in ("", "none"))


def _tools(specs: list[dict[str, Any]]) -> tuple[tuple[Tool, ...], ToolNames, bool]:
    tools: list[Tool] = []
    nested: dict[str, tuple[str, str]] = {}
    search = False
    for index, spec in enumerate(specs):
        kind = spec.get("type", "function")
        if kind == "function":
            tools.append(_function(spec, f"tools.{index}"))
        elif kind == "namespace":
            namespace = _name(spec, f"tools.{index}")
            note = str(spec.get("description") or "")
            for inner_index, inner in enumerate(spec.get("tools") or []):
                if not isinstance(inner, dict) or inner.get("type", "function") != "function":
                    continue
                tool = _function(inner, f"tools.{index}.tools.{inner_index}")
                flat = flat_name(namespace, tool.name)
                nested[flat] = (namespace, tool.name)
                description = (
                    f"[{namespace}] {note}\n{tool.description}" if note else tool.description
                )
                tools.append(Tool(flat, description.strip(), tool.parameters))
                note = ""  # the namespace's description goes with its first function only
        elif isinstance(kind, str) and kind.startswith("web_search"):
            # Codex offers `external_web_access: false` on every turn: no web, no search.
            search = search or spec.get("external_web_access") is not False
    top = frozenset(t.name for t in tools if t.name not in nested)
    return tuple(tools), ToolNames(nested, top), search


def _name(spec: dict[str, Any], param: str) -> str:
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("every function and namespace tool needs a name", param=param)
    return name


def _function(spec: dict[str, Any], param: str) -> Tool:
    parameters = spec.get("parameters")
    return Tool(
        _name(spec, param),
        str(spec.get("description") or ""),
        parameters if isinstance(parameters, dict) else {},
    )


def _tool_choice(choice: str | dict[str, Any] | None) -> ToolChoice:
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "function" and isinstance(choice.get("name"), str):
            namespace = choice.get("namespace")
            name = choice["name"]
            return ToolChoice("required", flat_name(namespace, name) if namespace else name)
        if kind == "allowed_tools":
            return _tool_choice(str(choice.get("mode") or "auto"))
        return ToolChoice("auto")
    if choice == "none":
        return ToolChoice("none")
    if choice == "required":
        return ToolChoice("required")
    return ToolChoice("auto")


def _json_schema(text: dict[str, Any] | None) -> dict[str, Any] | None:
    spec = (text or {}).get("format") or {}
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "json_object":
        return {}
    if kind == "json_schema":
        schema = spec.get("schema")
        return schema if isinstance(schema, dict) else {}
    return None


def _messages(items: str | list[dict[str, Any]]) -> list[Message]:
    if isinstance(items, str):
        return [Message("user", items)]
    messages: list[Message] = []
    names: dict[str, str] = {}  # call id → tool name, for the results
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(index, item))
        elif kind == "function_call":
            call = _call(index, item)
            names[call.id] = call.name
            _add_call(messages, call)
        elif kind == "function_call_output":
            call_id = _call_id(index, item)
            output = item.get("output")
            messages.append(
                Message(
                    "tool",
                    _output_text(index, output),
                    tool_call_id=call_id,
                    name=names.get(call_id),
                    attachments=_content_media(f"input.{index}.output", output),
                )
            )
        elif kind not in IGNORED_ITEMS:
            log.debug("input item %d of type %r ignored", index, kind)
    return messages


def _add_call(messages: list[Message], call: ToolCall) -> None:
    """A call joins the assistant turn right before it (its text or earlier calls)."""
    last = messages[-1] if messages else None
    if last is not None and last.role == "assistant":
        messages[-1] = dataclasses.replace(last, tool_calls=(*last.tool_calls, call))
    else:
        messages.append(Message("assistant", "", (call,)))


def _message(index: int, item: dict[str, Any]) -> Message:
    role = ROLES.get(str(item.get("role")))
    if role is None:
        raise BadRequest(f"unknown role {item.get('role')!r}", param=f"input.{index}.role")
    param, content = f"input.{index}.content", item.get("content")
    return Message(role, _content_text(param, content), attachments=_content_media(param, content))


def _call(index: int, item: dict[str, Any]) -> ToolCall:
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise BadRequest("a function_call item needs a name", param=f"input.{index}.name")
    namespace = item.get("namespace")
    if isinstance(namespace, str) and namespace:
        name = flat_name(namespace, name)
    arguments = item.get("arguments")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(_call_id(index, item), name, arguments or "{}")


def _call_id(index: int, item: dict[str, Any]) -> str:
    call_id = item.get("call_id") or item.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise BadRequest("a function call item needs a call_id", param=f"input.{index}.call_id")
    return call_id


def _output_text(index: int, output: Any) -> str:
    if isinstance(output, str) or output is None:
        return output or ""
    if isinstance(output, list):
        return _content_text(f"input.{index}.output", output)
    return json.dumps(output, ensure_ascii=False)


def _content_text(param: str, content: Any) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise BadRequest("content must be a string or a list of parts", param=param)
    texts: list[str] = []
    for part_index, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in TEXT_PARTS and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "refusal" and isinstance(part.get("refusal"), str):
            texts.append(part["refusal"])
        elif kind not in OPENAI_MEDIA:
            raise BadRequest(
                f"content part type {kind!r} is not supported", param=f"{param}.{part_index}"
            )
    return "\n".join(texts)


def _content_media(param: str, content: Any) -> tuple[Attachment, ...]:
    """The images and files among a message's (or a tool output's) parts."""
    if not isinstance(content, list):
        return ()
    found = (
        openai_part(part, f"{param}.{n}") if isinstance(part, dict) else None
        for n, part in enumerate(content)
    )
    return tuple(a for a in found if a is not None)
