"""Fold a chat history into the single message the Qwen web backends accept."""

from __future__ import annotations

import dataclasses

from qwen_free_api.chat import ChatRequest, Message
from qwen_free_api.tool_prompt import fold, json_instruction, tools_block

LABELS = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}
REMINDER = "(To call tools, reply with only a [function_calls] block as described at the top.)"


def upstream_prompt(chat: ChatRequest) -> str:
    """The text to send: only the new turn when continuing, else the whole history.

    Tool definitions lead a fresh conversation (a continued one has them already); JSON mode
    and tool reminders close it, where the model reads them last.
    """
    continuing = bool(chat.conversation_id)
    body = _last_user_turn(chat.messages) if continuing else flatten(chat.messages)
    parts = [body]
    if chat.calls_tools:
        if not continuing:
            parts.insert(0, tools_block(chat.tools, chat.tool_choice))
        parts.append(_demand(chat))
    if chat.json_schema is not None:
        parts.append(json_instruction(chat))
    return "\n\n".join(parts)


def _demand(chat: ChatRequest) -> str:
    choice = chat.tool_choice
    if choice.mode != "required":
        return REMINDER
    if choice.name:
        return f"(This reply must call the tool `{choice.name}` with a [function_calls] block.)"
    return "(This reply must call at least one tool with a [function_calls] block.)"


def flatten(messages: tuple[Message, ...]) -> str:
    """One user message passes as is; anything longer becomes a labelled transcript."""
    if len(messages) == 1 and messages[0].role == "user":
        return fold(messages[0])
    return "\n\n".join(
        f"{LABELS[m.role]}: {fold(m)}"
        for m in messages
        if m.text or m.tool_calls or m.attachments or m.role == "tool"
    )


def _last_user_turn(messages: tuple[Message, ...]) -> str:
    tail: list[Message] = []
    for message in reversed(messages):
        if message.role == "assistant":
            break
        tail.append(message)
    tail.reverse()
    return flatten(tuple(tail)) if tail else flatten(messages)


def overhead(chat: ChatRequest) -> int:
    """Characters of the prompt that are not history: tool definitions and instructions."""
    size = 0
    if chat.calls_tools:
        size += len(tools_block(chat.tools, chat.tool_choice)) + len(REMINDER) + 200
    if chat.json_schema is not None:
        size += len(json_instruction(chat)) + 4
    return size


def _size(message: Message) -> int:
    return len(fold(message)) + len(LABELS[message.role]) + 4


def fit(chat: ChatRequest, budget: int) -> tuple[ChatRequest, int]:
    """Drop the oldest turns until the folded prompt fits `budget` characters.

    System messages and the last message are never dropped; tool definitions count against
    the budget but are never dropped either. Returns the chat and how many messages were left
    out.
    """
    budget -= overhead(chat)
    messages = list(chat.messages)
    size = sum(_size(m) for m in messages)
    dropped = 0
    index = 0
    while size > budget and index < len(messages) - 1:
        message = messages[index]
        if message.role == "system":
            index += 1
            continue
        size -= _size(message)
        del messages[index]
        dropped += 1
    if not dropped:
        return chat, 0
    return dataclasses.replace(chat, messages=tuple(messages)), dropped
