"""Fold a chat history into the single message the Qwen web backends accept."""

from __future__ import annotations

import dataclasses

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


def fit(chat: ChatRequest, budget: int) -> tuple[ChatRequest, int]:
    """Drop the oldest turns until the folded prompt fits `budget` characters.

    System messages and the last message are never dropped. Returns the chat and how many
    messages were left out.
    """
    messages = list(chat.messages)
    size = sum(len(m.text) + len(LABELS[m.role]) + 4 for m in messages)
    dropped = 0
    index = 0
    while size > budget and index < len(messages) - 1:
        message = messages[index]
        if message.role == "system":
            index += 1
            continue
        size -= len(message.text) + len(LABELS[message.role]) + 4
        del messages[index]
        dropped += 1
    if not dropped:
        return chat, 0
    return dataclasses.replace(chat, messages=tuple(messages)), dropped
