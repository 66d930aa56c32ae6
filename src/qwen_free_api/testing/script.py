"""What the fake answers: the Script of one chat turn, recorded requests, answer text helpers."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

Dialect = Literal["cn", "intl"]

CANNED_REFUSAL = "抱歉，当前请求无法处理，请稍后再试。"
"""The fixed answer of `sign_mode="canned"` (a cn server that refuses a bad signature politely)."""

CN_ERRORS = frozenset(
    {
        "sign_soft",
        "sign_hard",
        "not_login",
        "waf_html",
        "waf_json",
        "empty",
        "http_500",
        "http_502",
        "http_503",
        "http_504_html",
        "canned",
        "error_frame",
    }
)
INTL_ERRORS = frozenset(
    {
        "quota",
        "waf",
        "captcha",
        "bad_request",
        "too_many_requests",
        "context_length",
        "http_401",
        "http_429",
        "http_500",
        "http_502",
        "http_503",
        "http_504_html",
        "html_waf",
    }
)
ERRORS: dict[Dialect, frozenset[str]] = {"cn": CN_ERRORS, "intl": INTL_ERRORS}


@dataclass
class Script:
    """One scripted chat answer; every field is optional.

    answer: None -> "Echo: <prompt>" (+ " (turn N)" on continued turns).
    reasoning: None -> "Thinking about: <first 40 chars>" when the request asks for thinking;
        "" -> none even if asked; any other text is always sent.
    piece: characters of answer (and reasoning) added per frame.
    search_results: intl web_search frame / cn bar/iframe `sources`.
    usage, usage_numbers: (prompt, completion) tokens; completion 0 -> number of answer pieces.
    error, error_after: a named error (see CN_ERRORS / INTL_ERRORS), sent after that many answer
        frames where the dialect can show it mid-stream (0 = instead of any content).
    first_byte_delay, keepalive_every: cn sends nothing (not even headers) for the delay; intl
        sends `response.created` then a `response.info` keep-alive every `keepalive_every` s.
    hold_after / stall_after: after that many answer frames wait for release() / forever.
    pace: seconds of silence after each answer frame (a slow upstream body).
    close_early: EOF after the answer frames, without the finish frame or terminator.
    chunk_bytes: write the body in writes of exactly this many bytes.
    crlf, heartbeats: CRLF line endings; ": ping" comments (cn also bare "[heartbeat]").
    duplicates, split_multibyte, no_event_lines, complete_json, moderation: cn variants.
    done_marker, no_phase, reasoning_format: intl variants.
    images: images a generation request produces (intl t2i, cn zaodian_generate_image).
    image_pending: intl keep-alives before the images; cn `chat/snap` / `req/detail` answers that
        are still pending before the images appear.
    image_interval: intl seconds before each of those keep-alives.
    image_refused: generation ends without any image (a refusal text instead).
    image_never: generation never ends (intl keep-alives for ever, cn pending for ever).
    """

    answer: str | None = None
    reasoning: str | None = None
    piece: int = 3
    search_results: list[dict[str, str]] | None = None
    usage: bool = True
    usage_numbers: tuple[int, int] = (17, 0)
    error: str | None = None
    error_after: int = 0
    first_byte_delay: float = 0.0
    keepalive_every: float = 10.0
    hold_after: int | None = None
    stall_after: int | None = None
    pace: float = 0.0
    close_early: bool = False
    chunk_bytes: int | None = None
    crlf: bool = False
    duplicates: bool = False
    split_multibyte: bool = False
    heartbeats: bool = False
    no_event_lines: bool = False
    complete_json: bool = False
    done_marker: bool = False
    no_phase: bool = False
    moderation: bool = False
    reasoning_format: str | None = None
    images: int = 1
    image_pending: int = 2
    image_interval: float = 0.0
    image_refused: bool = False
    image_never: bool = False

    def check(self, dialect: Dialect) -> None:
        """Raise ValueError when a field names something this dialect cannot do."""
        if self.error is not None and self.error not in ERRORS[dialect]:
            known = ", ".join(sorted(ERRORS[dialect]))
            raise ValueError(f"unknown {dialect} error {self.error!r}; known: {known}")
        if self.reasoning_format not in (None, "summary", "detail"):
            raise ValueError("reasoning_format must be None, 'summary' or 'detail'")
        if self.chunk_bytes is not None and self.chunk_bytes < 1:
            raise ValueError("chunk_bytes must be >= 1")
        if self.pace < 0:
            raise ValueError("pace must be >= 0")
        if self.images < 0 or self.image_pending < 0 or self.image_interval < 0:
            raise ValueError("images, image_pending and image_interval must be >= 0")


@dataclass
class Recorded:
    """One request as the fake received it (header names lower-case)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    body: bytes = field(repr=False)

    def json(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.body)


def split_pieces(text: str, piece: int) -> list[str]:
    """Cut `text` into pieces of `piece` characters (at least one character each)."""
    size = max(1, piece)
    return [text[i : i + size] for i in range(0, len(text), size)]


def answer_text(script: Script, prompt: str, turn: int) -> str:
    """The scripted answer, or the deterministic echo with a turn marker on continuations."""
    if script.answer is not None:
        return script.answer
    suffix = f" (turn {turn})" if turn > 1 else ""
    return f"Echo: {prompt}{suffix}"


def reasoning_text(script: Script, prompt: str, asked: bool) -> str:
    """The scripted reasoning; the default one only when the request asked for thinking."""
    if script.reasoning is not None:
        return script.reasoning
    return f"Thinking about: {prompt[:40]}" if asked else ""


def completion_total(script: Script, answer_pieces: int) -> int:
    """Completion tokens of the whole answer (default: one per answer piece)."""
    return script.usage_numbers[1] or answer_pieces


def tokens_after(total: int, done: int, count: int) -> int:
    """Cumulative completion tokens after `done` of `count` pieces; ends exactly at `total`."""
    if count == 0:
        return total
    return math.ceil(total * done / count)
