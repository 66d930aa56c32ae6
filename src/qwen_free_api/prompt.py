"""Fold a chat history into the single message the Qwen web backends accept."""

from __future__ import annotations

from qwen_free_api.chat import ChatRequest, Message

LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def upstream_prompt(chat: ChatRequest) -> str:
    """The text to send: only the new turn when continuing, else the whole history."""
    if chat.conversation_id:
        return _last_user_turn(chat.messages)
    return flatten(chat.messages)


def flatten(messages: tuple[Message, ...]) -> str:
    """One user message passes as is; anything longer becomes a labelled transcript."""
    if len(messages) == 1 and messages[0].role == "user":
        return messages[0].text
    return "\n\n".join(f"{LABELS[m.role]}: {m.text}" for m in messages if m.text)


def _last_user_turn(messages: tuple[Message, ...]) -> str:
    tail: list[Message] = []
    for message in reversed(messages):
        if message.role == "assistant":
            break
        tail.append(message)
    tail.reverse()
    return flatten(tuple(tail)) if tail else flatten(messages)
