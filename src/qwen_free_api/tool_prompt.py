"""The words that teach a tool-less web model to call tools, and tool turns written as text.

The Qwen web backends take one plain message, so tool definitions, earlier calls and their
results are all written into it. The calling protocol is the bracket form that toolcalls.py
reads back; results are labelled with the id of the call they answer.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from qwen_free_api.chat import ChatRequest, Message, Tool, ToolChoice

PROTOCOL = """\
# Tools

You can call the tools listed below. To call tools, reply with a block of \
exactly this form, and write nothing after it:

[function_calls]
[call:TOOL_NAME]{"argument": "value"}[/call]
[/function_calls]

Rules:
- TOOL_NAME is the name of one listed tool, spelled exactly as listed (it is case-sensitive).
- The arguments are one JSON object on a single line that follows the tool's parameter schema; \
escape quotes, backslashes and line breaks inside strings (\\", \\\\, \\n).
- To call several tools at once, put one [call:…] line per call inside the same block.
- No code fences around the block. After the block, stop and wait: the results come back in the \
next message, each as "[TOOL_RESULT for CALL_ID] result".
- If no tool is needed, answer normally, without the block."""

FIRMER = (
    "Your previous reply did not call a tool, but this reply must. Reply with only a "
    "[function_calls] block."
)
META_KEYS = frozenset({"$schema", "title", "examples", "$comment", "markdownDescription"})


def tools_block(tools: tuple[Tool, ...], choice: ToolChoice, *, firmer: bool = False) -> str:
    """The system text describing `tools`, the protocol and what `choice` demands."""
    lines = [PROTOCOL, ""]
    if choice.mode == "required":
        if choice.name:
            lines.append(f"This reply must call the tool `{choice.name}`.")
        else:
            lines.append("This reply must call at least one tool.")
    if firmer:
        lines.append(FIRMER)
    lines.append("## Available tools")
    for tool in tools:
        schema = json.dumps(
            compact_schema(tool.parameters), ensure_ascii=False, separators=(",", ":")
        )
        description = tool.description.strip() or "(no description)"
        lines.append(f"### {tool.name}\n{description}\nParameters: {schema}")
    return "\n".join(lines)


def compact_schema(schema: Any) -> Any:
    """A JSON schema without what does not help the model: titles, examples, `$schema`."""
    if isinstance(schema, list):
        return [compact_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    compact: dict[str, Any] = {}
    for key, value in schema.items():
        if key in META_KEYS:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(
            value, dict
        ):
            compact[key] = {name: compact_schema(sub) for name, sub in value.items()}
        else:
            compact[key] = compact_schema(value)
    return compact


def fold(message: Message) -> str:
    """A message's text as it appears in the upstream prompt, tool turns and attachments
    (as markers; the files themselves travel beside the prompt) included."""
    if message.attachments:
        marks = " ".join(f"[{a.kind}: {a.name or 'unnamed'}]" for a in message.attachments)
        text = f"{marks}\n{message.text}" if message.text else marks
        message = dataclasses.replace(message, text=text, attachments=())
    if message.role == "tool":
        label = f"[TOOL_RESULT for {message.tool_call_id or 'unknown'}]"
        if message.is_error:
            label += " (the tool failed)"
        return f"{label} {message.text}"
    if not message.tool_calls:
        return message.text
    calls = "\n".join(f"[call:{c.name}]{_one_line(c.arguments)}[/call]" for c in message.tool_calls)
    block = f"[function_calls]\n{calls}\n[/function_calls]"
    return f"{message.text}\n{block}" if message.text else block


def _one_line(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), ensure_ascii=False, separators=(",", ":"))
    except (ValueError, RecursionError):  # RecursionError: a client's deeply nested text
        return arguments.replace("\n", " ")


def json_instruction(chat: ChatRequest) -> str:
    """What JSON mode asks of the model."""
    if not chat.json_schema:
        return "Reply with only one JSON value: no prose, no code fences."
    schema = json.dumps(chat.json_schema, ensure_ascii=False, separators=(",", ":"))
    return (
        "Reply with only one JSON value that matches this JSON schema: no prose, no code "
        f"fences.\nSchema: {schema}"
    )
