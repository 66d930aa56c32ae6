"""The canonical chat request that every client dialect is parsed into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function the client offers the model; `parameters` is a JSON schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call the model made (or made earlier, in a history): `arguments` is a JSON object text."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image or document a message carries: inline bytes, or a URL still to be fetched.

    Dialects fill `data` (from base64 or a `data:` URL) or `url` (http/https, fetched safely
    by the gateway before anything is uploaded); `mime` may be empty until then.
    """

    kind: Literal["image", "document"]
    mime: str = ""
    name: str = ""
    data: bytes | None = field(default=None, repr=False)
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    text: str
    tool_calls: tuple[ToolCall, ...] = ()  # assistant turns that called tools
    tool_call_id: str | None = None  # tool turns: the call this result answers
    name: str | None = None  # tool turns: the tool's name, when the client says it
    is_error: bool = False  # tool turns: the tool failed
    attachments: tuple[Attachment, ...] = ()  # images and documents, in the order given


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """none: never call; auto: the model decides; required: must call (`name`: that tool)."""

    mode: Literal["none", "auto", "required"] = "auto"
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What the client asked for, independent of client dialect and upstream."""

    model: str  # the name the client sent, suffixes included
    messages: tuple[Message, ...]
    thinking: bool | None = None  # None: the model's default
    thinking_budget: int | None = None
    search: bool = False
    deep_search: bool = False
    conversation_id: str | None = None  # continue this upstream conversation
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    json_schema: dict[str, Any] | None = None  # answer with JSON (matching it, if not empty)
    stop: tuple[str, ...] = ()  # cut the answer at the first of these
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def calls_tools(self) -> bool:
        return bool(self.tools) and self.tool_choice.mode != "none"

    def prompt_text(self) -> str:
        """All message text, for token estimates."""
        return "\n".join(message.text for message in self.messages)
