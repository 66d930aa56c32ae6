"""The canonical chat request that every client dialect is parsed into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    text: str


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
    metadata: dict[str, str] = field(default_factory=dict)

    def prompt_text(self) -> str:
        """All message text, for token estimates."""
        return "\n".join(message.text for message in self.messages)
