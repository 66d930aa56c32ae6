"""How to ask each client dialect for an answer, and how to read what came back.

One adapter per dialect (OpenAI chat, OpenAI Responses, Anthropic Messages, Gemini). Each
builds a request (streamed or whole), parses the raw reply into a `Reply` (text, reasoning,
finish reason, usage, the error object and whether the dialect's terminator came last), and
knows how that dialect spells each failure: the fault matrix states a failure as a gateway
status and kind; the adapters say which envelope, type, code or status a client must see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MODEL = "qwen3.7-plus"

# Gateway failure kinds the matrix uses (a rate limit that is a quota is its own kind here,
# because clients are told apart: OpenAI `insufficient_quota`, Responses the same code).
KINDS = frozenset(
    {
        "quota",
        "rate_limited",
        "blocked",
        "credential_rejected",
        "upstream",
        "signing",
        "protocol",
        "timeout",
        "context_length",
        "invalid_request",
    }
)


@dataclass
class Reply:
    """One answer as the client saw it, normalised just enough to compare across dialects."""

    status: int
    headers: dict[str, str]
    raw: str
    streamed: bool = False  # a 200 event stream (headers went out before the answer was known)
    text: str = ""
    reasoning: str = ""
    finish: str | None = None  # normalised: "stop" | "content_filter" | other native value
    usage: tuple[int, int] | None = None  # (prompt, completion) as the dialect reports them
    error: dict[str, Any] | None = None  # the dialect's error object, from body or stream
    terminated: bool = False  # the dialect's own end marker came last (after error or finish)
    keepalives: int = 0
    events: list[Any] = field(default_factory=list)


def _blocks(raw: str) -> list[list[str]]:
    return [block.split("\n") for block in raw.split("\n\n") if block.strip()]


class Probe:
    """The contract of a dialect adapter."""

    name = ""

    def request(self, key: str, prompt: str, *, stream: bool, thinking: bool) -> Any:
        """(path, JSON body, headers) of one request."""
        raise NotImplementedError

    def parse(self, status: int, headers: dict[str, str], raw: str, *, stream: bool) -> Reply:
        raise NotImplementedError

    def check_error(self, reply: Reply, kind: str, status: int, *, in_band: bool) -> None:
        """Assert `reply.error` is how this dialect reports a `kind` failure of `status`."""
        raise NotImplementedError


# --- OpenAI chat completions --------------------------------------------------------------

OPENAI_TYPES = {
    "quota": "insufficient_quota",
    "rate_limited": "rate_limit_error",
    "blocked": "service_unavailable",
    "credential_rejected": "authentication_error",
    "upstream": "upstream_error",
    "signing": "upstream_error",
    "protocol": "upstream_error",
    "timeout": "timeout",
    "context_length": "invalid_request_error",
    "invalid_request": "invalid_request_error",
}


def _openai_error(error: dict[str, Any] | None, kind: str) -> None:
    assert error is not None, "no error object"
    assert set(error) == {"message", "type", "code", "param"}, error
    assert error["type"] == OPENAI_TYPES[kind], error
    assert error["message"] and error["code"], error


class OpenAIChat(Probe):
    name = "openai"

    def request(self, key: str, prompt: str, *, stream: bool, thinking: bool) -> Any:
        body: dict[str, Any] = {
            "model": MODEL,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        if thinking:
            body["enable_thinking"] = True
        return "/v1/chat/completions", body, {"authorization": f"Bearer {key}"}

    def parse(self, status: int, headers: dict[str, str], raw: str, *, stream: bool) -> Reply:
        reply = Reply(status, headers, raw)
        if not headers.get("content-type", "").startswith("text/event-stream"):
            data = json.loads(raw)
            if "error" in data:
                reply.error = data["error"]
                return reply
            choice = data["choices"][0]
            reply.text = choice["message"].get("content") or ""
            reply.reasoning = choice["message"].get("reasoning_content") or ""
            reply.finish = choice["finish_reason"]
            reply.usage = (data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"])
            return reply
        reply.streamed = True
        done = False
        for lines in _blocks(raw):
            if lines[0].startswith(":"):
                reply.keepalives += 1
                continue
            assert not done, "data after [DONE]"
            assert len(lines) == 1 and lines[0].startswith("data: "), lines
            if lines[0] == "data: [DONE]":
                done = True
                continue
            chunk = json.loads(lines[0][6:])
            assert (reply.error is None and reply.finish is None) or "usage" in chunk, chunk
            reply.events.append(chunk)
            self._chunk(reply, chunk)
        reply.terminated = done
        return reply

    @staticmethod
    def _chunk(reply: Reply, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            reply.error = chunk["error"]
            return
        if chunk.get("usage"):
            reply.usage = (chunk["usage"]["prompt_tokens"], chunk["usage"]["completion_tokens"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reply.text += delta.get("content") or ""
            reply.reasoning += delta.get("reasoning_content") or ""
            reply.finish = choice.get("finish_reason") or reply.finish

    def check_error(self, reply: Reply, kind: str, status: int, *, in_band: bool) -> None:
        _openai_error(reply.error, kind)


# --- OpenAI Responses ---------------------------------------------------------------------

RESPONSES_CODES = {
    "quota": "insufficient_quota",
    "rate_limited": "rate_limit_exceeded",
    "context_length": "context_length_exceeded",
    "blocked": "blocked",
    "signing": "signing",
    "protocol": "protocol",
    "timeout": "timeout",
    "credential_rejected": "credential_rejected",
}


class Responses(Probe):
    name = "responses"

    def request(self, key: str, prompt: str, *, stream: bool, thinking: bool) -> Any:
        body: dict[str, Any] = {"model": MODEL, "input": prompt, "stream": stream}
        if thinking:
            body["reasoning"] = {"effort": "high", "summary": "auto"}
        return "/v1/responses", body, {"authorization": f"Bearer {key}"}

    def parse(self, status: int, headers: dict[str, str], raw: str, *, stream: bool) -> Reply:
        reply = Reply(status, headers, raw)
        if not headers.get("content-type", "").startswith("text/event-stream"):
            data = json.loads(raw)
            if "error" in data and data.get("object") != "response":
                reply.error = data["error"]
            else:
                self._response(reply, data)
            return reply
        reply.streamed = True
        for lines in _blocks(raw):
            if lines[0].startswith(":"):
                reply.keepalives += 1
                continue
            assert len(lines) == 2 and lines[0].startswith("event: "), lines
            event = json.loads(lines[1].removeprefix("data: "))
            assert event["type"] == lines[0][7:], lines
            reply.events.append(event)
        assert [e["sequence_number"] for e in reply.events] == list(range(len(reply.events)))
        self._events(reply)
        return reply

    @staticmethod
    def _events(reply: Reply) -> None:
        terminal = ("response.completed", "response.incomplete", "response.failed", "error")
        for event in reply.events:
            kind = event["type"]
            if kind == "response.output_text.delta":
                reply.text += event["delta"]
            elif kind.startswith("response.reasoning") and kind.endswith(".delta"):
                reply.reasoning += event["delta"]
        last = reply.events[-1] if reply.events else {}
        ends = [i for i, e in enumerate(reply.events) if e["type"] in terminal]
        reply.terminated = ends == [len(reply.events) - 1]
        if last.get("type") == "error":
            reply.error = last
        elif "response" in last:
            Responses._response(reply, last["response"], text=False)

    @staticmethod
    def _response(reply: Reply, body: dict[str, Any], *, text: bool = True) -> None:
        if body.get("status") == "failed":
            reply.error = body["error"]
            return
        if text:
            for item in body["output"]:
                for part in item.get("content") or []:
                    reply.text += part.get("text", "") if item["type"] == "message" else ""
                for part in item.get("summary") or []:
                    reply.reasoning += part.get("text", "")
                for part in item.get("content") or []:
                    reply.reasoning += part.get("text", "") if item["type"] == "reasoning" else ""
        incomplete = (body.get("incomplete_details") or {}).get("reason")
        reply.finish = incomplete or ("stop" if body["status"] == "completed" else body["status"])
        usage = body.get("usage") or {}
        reply.usage = (usage["input_tokens"], usage["output_tokens"]) if usage else None

    def check_error(self, reply: Reply, kind: str, status: int, *, in_band: bool) -> None:
        error = reply.error
        if not in_band:  # before the stream, or not streamed: the chat completions envelope
            _openai_error(error, kind)
            return
        assert error is not None, "no response.failed / error event"
        assert error["message"], error
        assert error["code"] == RESPONSES_CODES.get(kind, error["code"]) and error["code"], error


# --- Anthropic Messages -------------------------------------------------------------------

ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
}
ANTHROPIC_STOPS = {"end_turn": "stop", "refusal": "content_filter"}


class Anthropic(Probe):
    name = "anthropic"

    def request(self, key: str, prompt: str, *, stream: bool, thinking: bool) -> Any:
        body: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 1024,
            "messages": [{"role": "user", "content": prompt}],
            "stream": stream,
        }
        if thinking:
            body["thinking"] = {"type": "enabled", "budget_tokens": 1024}
        return "/v1/messages", body, {"x-api-key": key, "anthropic-version": "2023-06-01"}

    def parse(self, status: int, headers: dict[str, str], raw: str, *, stream: bool) -> Reply:
        reply = Reply(status, headers, raw)
        if not headers.get("content-type", "").startswith("text/event-stream"):
            data = json.loads(raw)
            if data.get("type") == "error":
                reply.error = data["error"]
                return reply
            for block in data["content"]:
                reply.text += block.get("text", "")
                reply.reasoning += block.get("thinking", "")
            self._stop(reply, data["stop_reason"], data["usage"])
            return reply
        reply.streamed = True
        for lines in _blocks(raw):
            if lines[0].startswith(":"):
                reply.keepalives += 1
                continue
            assert len(lines) == 2 and lines[0].startswith("event: "), lines
            event = json.loads(lines[1].removeprefix("data: "))
            assert event["type"] == lines[0][7:], lines
            reply.events.append(event)
        self._events(reply)
        return reply

    @staticmethod
    def _events(reply: Reply) -> None:
        for event in reply.events:
            kind = event["type"]
            if kind == "ping":
                reply.keepalives += 1
            elif kind == "content_block_delta":
                reply.text += event["delta"].get("text", "")
                reply.reasoning += event["delta"].get("thinking", "")
            elif kind == "message_delta":
                Anthropic._stop(reply, event["delta"]["stop_reason"], event["usage"])
            elif kind == "error":
                assert set(event) == {"type", "error"}, event
                reply.error = event["error"]
        last = reply.events[-1]["type"] if reply.events else ""
        ends = [i for i, e in enumerate(reply.events) if e["type"] in ("message_stop", "error")]
        reply.terminated = last in ("message_stop", "error") and len(ends) == 1

    @staticmethod
    def _stop(reply: Reply, reason: str, usage: dict[str, Any]) -> None:
        reply.finish = ANTHROPIC_STOPS.get(reason, reason)
        reply.usage = (usage.get("input_tokens", 0), usage["output_tokens"])

    def check_error(self, reply: Reply, kind: str, status: int, *, in_band: bool) -> None:
        error = reply.error
        assert error is not None, "no error event / body"
        assert set(error) == {"type", "message"} and error["message"], error
        expected = "overloaded_error" if kind == "blocked" else ANTHROPIC_TYPES[status]
        assert error["type"] == expected, error


# --- Gemini -------------------------------------------------------------------------------

GEMINI_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    429: "RESOURCE_EXHAUSTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
GEMINI_FINISHES = {"STOP": "stop", "SAFETY": "content_filter"}


class Gemini(Probe):
    name = "gemini"

    def request(self, key: str, prompt: str, *, stream: bool, thinking: bool) -> Any:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": prompt}]}]}
        if thinking:
            body["generationConfig"] = {"thinkingConfig": {"includeThoughts": True}}
        return f"/v1beta/models/{MODEL}:{method}", body, {"x-goog-api-key": key}

    def parse(self, status: int, headers: dict[str, str], raw: str, *, stream: bool) -> Reply:
        reply = Reply(status, headers, raw)
        if not headers.get("content-type", "").startswith("text/event-stream"):
            data = json.loads(raw)
            if "error" in data:
                reply.error = data["error"]
            else:
                self._chunk(reply, data)
            return reply
        reply.streamed = True
        for lines in _blocks(raw):
            assert len(lines) == 1 and lines[0].startswith("data: "), lines  # no comments
            reply.events.append(json.loads(lines[0][6:]))
        for chunk in reply.events:
            assert reply.error is None, "a chunk after the error"
            self._chunk(reply, chunk)
        last = reply.events[-1] if reply.events else {}
        reply.terminated = "error" in last or bool(_candidate(last).get("finishReason"))
        return reply

    @staticmethod
    def _chunk(reply: Reply, chunk: dict[str, Any]) -> None:
        if "error" in chunk:
            reply.error = chunk["error"]
            return
        candidate = _candidate(chunk)
        parts = (candidate.get("content") or {}).get("parts") or []
        if not candidate.get("finishReason") and all(p.get("text") == "" for p in parts):
            reply.keepalives += 1
        for part in parts:
            if part.get("thought"):
                reply.reasoning += part.get("text", "")
            else:
                reply.text += part.get("text", "")
        if candidate.get("finishReason"):
            reason = candidate["finishReason"]
            reply.finish = GEMINI_FINISHES.get(reason, reason)
        usage = chunk.get("usageMetadata")
        if usage and candidate.get("finishReason"):
            reply.usage = (usage["promptTokenCount"], usage.get("candidatesTokenCount", 0))

    def check_error(self, reply: Reply, kind: str, status: int, *, in_band: bool) -> None:
        error = reply.error
        assert error is not None, "no error envelope"
        assert (error["code"], error["status"]) == (status, GEMINI_STATUSES[status]), error
        assert error["message"], error


def _candidate(chunk: dict[str, Any]) -> dict[str, Any]:
    candidates = chunk.get("candidates") or [{}]
    first: dict[str, Any] = candidates[0]
    return first


PROBES: dict[str, Probe] = {p.name: p for p in (OpenAIChat(), Responses(), Anthropic(), Gemini())}
