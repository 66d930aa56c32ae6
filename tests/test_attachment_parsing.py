"""Images and documents in every dialect's request, read into `Message.attachments`.

Unit level: each dialect's translation function is called directly; nothing is fetched or
uploaded (http(s) URLs stay URLs for the gateway).
"""

from __future__ import annotations

import base64
from typing import Any

import pytest

from qwen_free_api.chat import Attachment, ChatRequest, Message
from qwen_free_api.dialects import anthropic_wire, gemini_wire, openai_wire, responses_wire
from qwen_free_api.errors import BadRequest

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(24))
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"
PNG64 = base64.b64encode(PNG).decode()
PDF64 = base64.b64encode(PDF).decode()
PNG_URL = f"data:image/png;base64,{PNG64}"
PDF_URL = f"data:application/pdf;base64,{PDF64}"
HTTP_IMAGE = "https://example.com/pics/cat.png?size=large"
BAD_URLS = ("file:///etc/passwd", "ftp://example.com/cat.png", "gopher://x/1")


def image(data: bytes = PNG, name: str = "") -> Attachment:
    return Attachment("image", "image/png", name, data)


def pdf(name: str = "") -> Attachment:
    return Attachment("document", "application/pdf", name, PDF)


def linked(url: str = HTTP_IMAGE, name: str = "cat.png", mime: str = "") -> Attachment:
    return Attachment("image", mime, name, url=url)


def refused(call: Any, said: str, param: str | None = None) -> BadRequest:
    with pytest.raises(BadRequest) as caught:
        call()
    assert said in caught.value.message, caught.value.message
    if param is not None:
        assert caught.value.param == param
    return caught.value


# ---------------------------------------------------------------------------------------------
# OpenAI Chat Completions


def chat(*messages: dict[str, Any]) -> ChatRequest:
    body = {"model": "qwen3-max", "messages": list(messages)}
    return openai_wire.to_chat(openai_wire.parse_request(body))


def chat_user(*parts: dict[str, Any]) -> Message:
    return chat({"role": "user", "content": [{"type": "text", "text": "look"}, *parts]}).messages[0]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"type": "image_url", "image_url": {"url": HTTP_IMAGE, "detail": "high"}}, linked()),
        ({"type": "image_url", "image_url": {"url": PNG_URL}}, image()),
        ({"type": "image_url", "image_url": PNG_URL}, image()),  # a plain string
        ({"type": "image_url", "image_url": HTTP_IMAGE}, linked()),
        ({"type": "input_image", "image_url": PNG_URL}, image()),
        ({"type": "file", "file": {"file_data": PDF_URL, "filename": "r.pdf"}}, pdf("r.pdf")),
        ({"type": "file", "file": {"file_data": PDF64, "filename": "r.pdf"}}, pdf("r.pdf")),
        ({"type": "file", "file": {"file_data": PDF64}}, pdf()),  # typed by its first bytes
        ({"type": "file", "file": {"file_data": PNG64}}, image()),
        (
            {"type": "file", "file": {"file_data": "aGVsbG8=", "filename": "notes.txt"}},
            Attachment("document", "text/plain", "notes.txt", b"hello"),
        ),
    ],
)
def test_openai_chat_forms(part: dict[str, Any], expected: Attachment) -> None:
    message = chat_user(part)
    assert message.text == "look"
    assert message.attachments == (expected,)
    assert message.attachments[0].data == expected.data


def test_openai_chat_refusals() -> None:
    param = "messages.0.content.1"
    file_id = {"type": "file", "file": {"file_id": "file-abc"}}
    refused(lambda: chat_user(file_id), "file ids are not supported", param)
    refused(
        lambda: chat_user({"type": "file", "file": {"file_id": "f", "filename": "x"}}), "file_data"
    )
    audio = {"type": "input_audio", "input_audio": {"data": "aGk=", "format": "wav"}}
    refused(lambda: chat_user(audio), "input_audio", param)
    for url in BAD_URLS:
        error = refused(
            lambda url=url: chat_user({"type": "image_url", "image_url": {"url": url}}), "only"
        )
        assert error.param == param and url.split(":")[0] in error.message
    bad = {"type": "file", "file": {"file_data": "not base64!!", "filename": "a.pdf"}}
    refused(lambda: chat_user(bad), "malformed", param)
    refused(lambda: chat_user({"type": "image_url", "image_url": "data:,"}), "no data", param)
    refused(lambda: chat_user({"type": "image_url", "image_url": {}}), "non-empty string")
    refused(lambda: chat_user({"type": "file", "file": "x"}), "`file` object")
    refused(lambda: chat_user({"type": "video"}), "'video' is not supported", param)


def test_openai_chat_keeps_earlier_turns_and_tool_results() -> None:
    picture = {"type": "image_url", "image_url": {"url": PNG_URL}}
    result = chat(
        {"role": "user", "content": [{"type": "text", "text": "what is this?"}, picture]},
        {"role": "assistant", "content": "a square", "tool_calls": None},
        {"role": "assistant", "content": None, "tool_calls": [call("shot")]},
        {"role": "tool", "tool_call_id": "c1", "content": [picture]},
        {"role": "user", "content": "and now?"},
    )
    first, _, _, tool, last = result.messages
    assert first.attachments == (image(),) and first.text == "what is this?"
    assert tool.role == "tool" and tool.tool_call_id == "c1" and tool.attachments == (image(),)
    assert last.attachments == ()


def call(name: str) -> dict[str, Any]:
    return {"id": "c1", "type": "function", "function": {"name": name, "arguments": "{}"}}


# ---------------------------------------------------------------------------------------------
# OpenAI Responses


def responses(items: Any) -> ChatRequest:
    body = {"model": "qwen3-max", "input": items}
    return responses_wire.to_chat(responses_wire.parse_request(body)).chat


def responses_user(*parts: dict[str, Any]) -> Message:
    content = [{"type": "input_text", "text": "look"}, *parts]
    return responses([{"role": "user", "content": content}]).messages[0]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"type": "input_image", "image_url": HTTP_IMAGE, "detail": "auto"}, linked()),
        ({"type": "input_image", "image_url": PNG_URL}, image()),
        ({"type": "input_file", "file_data": PDF_URL, "filename": "r.pdf"}, pdf("r.pdf")),
        ({"type": "input_file", "file_data": PDF64, "filename": "r.pdf"}, pdf("r.pdf")),
        (
            {"type": "input_file", "file_url": "https://example.com/docs/r.pdf"},
            Attachment(
                "document", "application/pdf", "r.pdf", url="https://example.com/docs/r.pdf"
            ),
        ),
        (
            {"type": "input_file", "file_url": "https://example.com/get?id=1", "filename": "a"},
            Attachment("document", "", "a", url="https://example.com/get?id=1"),
        ),
    ],
)
def test_responses_forms(part: dict[str, Any], expected: Attachment) -> None:
    message = responses_user(part)
    assert message.text == "look" and message.attachments == (expected,)
    assert message.attachments[0].data == expected.data


def test_responses_refusals() -> None:
    param = "input.0.content.1"
    refused(lambda: responses_user({"type": "input_image", "file_id": "f"}), "file ids", param)
    refused(lambda: responses_user({"type": "input_file", "file_id": "f"}), "file_data", param)
    for url in BAD_URLS:
        refused(
            lambda url=url: responses_user({"type": "input_image", "image_url": url}), "only", param
        )
        refused(
            lambda url=url: responses_user({"type": "input_file", "file_url": url}), "only", param
        )
    bad = {"type": "input_file", "file_data": "%%%", "filename": "x.pdf"}
    refused(lambda: responses_user(bad), "malformed", param)
    refused(lambda: responses_user({"type": "input_file"}), "file_data", param)


def test_responses_tool_outputs_and_earlier_turns() -> None:
    items = [
        {"role": "user", "content": [{"type": "input_image", "image_url": PNG_URL}]},
        {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [
                {"type": "input_text", "text": "the screen"},
                {"type": "input_image", "image_url": HTTP_IMAGE},
                {"type": "input_file", "file_data": PDF64, "filename": "log.pdf"},
            ],
        },
        {"role": "user", "content": "compare"},
    ]
    first, assistant, tool, last = responses(items).messages
    assert first.attachments == (image(),) and first.text == ""
    assert assistant.tool_calls[0].name == "shot" and assistant.attachments == ()
    assert tool.role == "tool" and tool.text == "the screen" and tool.name == "shot"
    assert tool.attachments == (linked(), pdf("log.pdf"))
    assert last.text == "compare" and last.attachments == ()


# ---------------------------------------------------------------------------------------------
# Anthropic Messages


def anthropic(*messages: dict[str, Any]) -> ChatRequest:
    body = {"model": "claude", "max_tokens": 64, "messages": list(messages)}
    return anthropic_wire.to_chat(anthropic_wire.parse(anthropic_wire.MessagesRequest, body))


def anthropic_user(*blocks: dict[str, Any]) -> Message:
    content = [*blocks, {"type": "text", "text": "look"}]
    return anthropic({"role": "user", "content": content}).messages[0]


def source(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, **fields}


@pytest.mark.parametrize(
    ("block", "expected"),
    [
        (
            {"type": "image", "source": source("base64", media_type="image/png", data=PNG64)},
            image(),
        ),
        ({"type": "image", "source": source("url", url=HTTP_IMAGE)}, linked()),
        (
            {
                "type": "document",
                "title": "Report",
                "source": source("base64", media_type="application/pdf", data=PDF64),
            },
            pdf("Report"),
        ),
        (
            {"type": "document", "source": source("text", media_type="text/plain", data="héllo")},
            Attachment("document", "text/plain", "", "héllo".encode()),
        ),
        (
            {"type": "document", "source": source("url", url="https://example.com/a/r.pdf")},
            Attachment("document", "application/pdf", "r.pdf", url="https://example.com/a/r.pdf"),
        ),
        (
            {
                "type": "document",
                "title": "notes",
                "source": source(
                    "content",
                    content=[{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
                ),
            },
            Attachment("document", "text/plain", "notes", b"one\ntwo"),
        ),
        (
            {"type": "document", "source": source("content", content="just text")},
            Attachment("document", "text/plain", "", b"just text"),
        ),
    ],
)
def test_anthropic_forms(block: dict[str, Any], expected: Attachment) -> None:
    message = anthropic_user(block)
    assert message.text == "look" and message.attachments == (expected,)
    assert message.attachments[0].data == expected.data


def test_anthropic_refusals() -> None:
    where = "messages.0.content.0"
    files = {"type": "document", "source": source("file", file_id="file_1")}
    refused(lambda: anthropic_user(files), "Files API", f"{where}.source")
    untyped = {"type": "image", "source": source("base64", data=PNG64)}
    refused(lambda: anthropic_user(untyped), "media_type", f"{where}.source")
    bad = {"type": "image", "source": source("base64", media_type="image/png", data="#!")}
    refused(lambda: anthropic_user(bad), "malformed", f"{where}.source")
    for url in BAD_URLS:
        block = {"type": "image", "source": source("url", url=url)}
        refused(lambda block=block: anthropic_user(block), "only http, https", f"{where}.source")
    refused(lambda: anthropic_user({"type": "image"}), "needs a source object", where)
    odd = {"type": "image", "source": source("text", data="x")}
    refused(lambda: anthropic_user(odd), "unknown image source type 'text'")
    mixed = source("content", content=[{"type": "image", "source": {}}])
    refused(lambda: anthropic_user({"type": "document", "source": mixed}), "text blocks only")
    picture = {"type": "image", "source": source("url", url=HTTP_IMAGE)}
    assistant = {"role": "assistant", "content": [picture]}
    refused(lambda: anthropic({"role": "user", "content": "hi"}, assistant), "user turns")


def test_anthropic_tool_results_and_earlier_turns() -> None:
    picture = {"type": "image", "source": source("base64", media_type="image/png", data=PNG64)}
    use = {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}
    result = {
        "type": "tool_result",
        "tool_use_id": "toolu_1",
        "content": [{"type": "text", "text": "the screen"}, picture],
    }
    messages = anthropic(
        {"role": "user", "content": [picture, {"type": "text", "text": "what is this?"}]},
        {"role": "assistant", "content": [use]},
        {"role": "user", "content": [result]},
        {"role": "user", "content": [result, picture]},
    ).messages
    first, _, tool, tool_again, user = messages
    assert first.attachments == (image(),) and first.text == "what is this?"
    assert tool.role == "tool" and tool.text == "the screen" and tool.attachments == (image(),)
    assert tool_again.attachments == (image(),)
    assert user.role == "user" and user.text == "" and user.attachments == (image(),)


# ---------------------------------------------------------------------------------------------
# Gemini generateContent


def gemini(*contents: dict[str, Any]) -> ChatRequest:
    wire = gemini_wire.parse(gemini_wire.GenerateContentRequest, {"contents": list(contents)})
    request: ChatRequest = gemini_wire.to_chat("gemini-2.5-pro", wire)
    return request


def gemini_user(*parts: dict[str, Any]) -> Message:
    return gemini({"role": "user", "parts": [{"text": "look"}, *parts]}).messages[0]


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"inlineData": {"mimeType": "image/png", "data": PNG64}}, image()),
        ({"inline_data": {"mime_type": "image/png", "data": PNG64}}, image()),
        ({"inlineData": {"mimeType": "application/pdf", "data": PDF64}}, pdf()),
        (
            {"fileData": {"mimeType": "image/png", "fileUri": HTTP_IMAGE}},
            linked(mime="image/png"),
        ),
        (
            {"file_data": {"mime_type": "application/pdf", "file_uri": "https://x.org/r.pdf"}},
            Attachment("document", "application/pdf", "r.pdf", url="https://x.org/r.pdf"),
        ),
        ({"fileData": {"fileUri": PNG_URL}}, image()),
    ],
)
def test_gemini_forms(part: dict[str, Any], expected: Attachment) -> None:
    message = gemini_user(part)
    assert message.text == "look" and message.attachments == (expected,)
    assert message.attachments[0].data == expected.data


def test_gemini_refusals() -> None:
    param = "contents.0.parts.1"
    bad = {"inlineData": {"mimeType": "image/png", "data": "!!not base64"}}
    refused(lambda: gemini_user(bad), "malformed", f"{param}.inlineData")
    untyped = {"inlineData": {"data": PNG64}}
    refused(lambda: gemini_user(untyped), "mimeType", f"{param}.inlineData")
    for url in (*BAD_URLS, "gs://bucket/cat.png"):
        part = {"fileData": {"mimeType": "image/png", "fileUri": url}}
        refused(lambda part=part: gemini_user(part), "only http, https", f"{param}.fileData")
    uploaded = "https://generativelanguage.googleapis.com/v1beta/files/abc"
    part = {"fileData": {"mimeType": "image/png", "fileUri": uploaded}}
    refused(lambda: gemini_user(part), "Files API", f"{param}.fileData")


def test_gemini_function_responses_and_earlier_turns() -> None:
    picture = {"inlineData": {"mimeType": "image/png", "data": PNG64}}
    answer = {
        "functionResponse": {
            "name": "shot",
            "response": {"output": "the screen"},
            "parts": [picture, {"fileData": {"mimeType": "image/png", "fileUri": HTTP_IMAGE}}],
        }
    }
    messages = gemini(
        {"role": "user", "parts": [picture, {"text": "what is this?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "shot", "args": {}}}]},
        {"role": "user", "parts": [answer]},
        {"role": "user", "parts": [{"text": "and now?"}]},
    ).messages
    first, _, tool, last = messages
    assert first.attachments == (image(),) and first.text == "what is this?"
    assert tool.role == "tool" and tool.text == "the screen"
    assert tool.attachments == (image(), linked(mime="image/png"))
    assert last.attachments == ()
    wire = gemini_wire.parse(
        gemini_wire.GenerateContentRequest,
        {"contents": [{"parts": [picture, answer, {"text": "hi"}]}]},
    )
    _, media = gemini_wire.counted_text(wire)
    assert media == 3  # one part, two inside the function response: 258 tokens each
