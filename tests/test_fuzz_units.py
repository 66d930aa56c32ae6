"""Properties of the parsers hostile bytes reach: the SSE decoder and the upstream frame readers,
the stream normaliser, the tool-call parser, and every dialect's request parser.

Each property holds for every input Hypothesis makes (bounded and derandomized, so a run is
deterministic): the same events however bytes are split, deltas that add up to the final text,
tool calls that do not depend on how the answer was cut, and for request bodies either a
canonical request or the dialect's own 4xx error, never another exception.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fuzz_bodies import BODIES, DEEP, JSON
from qwen_free_api import sse
from qwen_free_api.chat import ChatRequest, Tool
from qwen_free_api.credentials import jwt_claims
from qwen_free_api.dialects import (
    anthropic_render,
    anthropic_wire,
    gemini,
    gemini_wire,
    images,
    openai,
    openai_wire,
    responses_wire,
)
from qwen_free_api.errors import GatewayError
from qwen_free_api.events import TextDelta, ToolCalled
from qwen_free_api.prompt import fit, upstream_prompt
from qwen_free_api.shaping import json_answer
from qwen_free_api.snapshots import Differ
from qwen_free_api.toolcalls import MARKERS, ToolCallParser
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.cn_frames import Turn, frame_events
from qwen_free_api.upstreams.intl import _frame_events as intl_frame_events
from qwen_free_api.upstreams.intl import _Turn as IntlTurn
from qwen_free_api.upstreams.replies import json_frame

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
FEW = settings(FUZZ, max_examples=60)

# Text without line breaks: what one SSE field line can carry.
LINE = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"))


def cuts(size: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, size), max_size=12).map(sorted)


def split(data: Any, at: list[int]) -> list[Any]:
    bounds = [0, *at, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


async def _source(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


def decode(chunks: list[bytes]) -> list[sse.Event]:
    async def run() -> list[sse.Event]:
        return [event async for event in sse.decode(_source(chunks))]

    return asyncio.run(run())


# The SSE decoder


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[sse.Event]]:
    """A server-sent event stream in any of the framings the backends use, and its events."""
    events: list[sse.Event] = []
    text = ""
    for _ in range(draw(st.integers(0, 5))):
        newline = draw(st.sampled_from(["\n", "\r\n"]))
        if draw(st.booleans()):
            text += draw(st.sampled_from([": ping", "[heartbeat]", "id: 7", "retry: 10"])) + newline
        name = draw(st.sampled_from([None, "message", "complete", "x"]))
        lines = draw(st.lists(LINE, min_size=1, max_size=3))
        space = draw(st.sampled_from(["", " "]))
        if name is not None:
            text += f"event:{space}{name}{newline}"
        text += "".join(f"data:{space}{line}{newline}" for line in lines)
        text += newline
        values = [line[1:] if not space and line.startswith(" ") else line for line in lines]
        events.append(sse.Event("\n".join(values), name or "message"))
    return text.encode(), events


@FUZZ
@given(body_events=sse_bodies(), data=st.data())
def test_sse_any_split_gives_the_events_of_the_whole(
    body_events: tuple[bytes, list[sse.Event]], data: st.DataObject
) -> None:
    body, events = body_events
    pieces = split(body, data.draw(cuts(len(body))))  # cuts fall inside UTF-8 characters too
    assert decode(pieces) == events
    assert decode([body]) == events
    assert sse.parse_text(body.decode()) == events


@FUZZ
@given(garbage=st.binary(max_size=300), data=st.data())
@example(garbage=b"data: \xff\xfe\n\n\xe4\xbd", data=None)
def test_sse_garbage_decodes_the_same_however_split(garbage: bytes, data: Any) -> None:
    whole = decode([garbage])  # never raises: bad UTF-8 becomes U+FFFD
    if data is not None:
        assert decode(split(garbage, data.draw(cuts(len(garbage))))) == whole


# The upstream frame readers: anything in a frame is a typed error or events, never a crash


@FUZZ
@given(data=LINE | JSON.map(json.dumps))
@example(data=DEEP)
@example(data='{"data":' * 3000 + "1" + "}" * 3000)
def test_frames_are_json_objects_or_a_protocol_error(data: str) -> None:
    try:
        frame = json_frame(data)
    except GatewayError as error:
        assert error.status == 502 and error.kind == "protocol"
        return
    assert isinstance(frame, dict)


@st.composite
def cn_frames(draw: st.DrawFn) -> Any:
    item = st.fixed_dictionaries(
        {},
        optional={
            "mime_type": st.sampled_from(["multi_load/iframe", "text/plain", "bar/iframe"]) | JSON,
            "content": st.text(max_size=20) | JSON,
            "status": st.sampled_from(["generating", "complete", "finished"]) | JSON,
            "meta_data": JSON,
        },
    )
    data = st.fixed_dictionaries(
        {},
        optional={
            "messages": st.lists(item | JSON, max_size=3) | JSON,
            "status": st.sampled_from(["generating", "complete"]) | JSON,
            "extra_info": JSON,
            "audit_info": JSON,
        },
    )
    return draw(st.fixed_dictionaries({}, optional={"data": data | JSON, "communication": JSON}))


@st.composite
def intl_frames(draw: st.DrawFn) -> Any:
    delta = st.fixed_dictionaries(
        {},
        optional={
            "phase": st.sampled_from([None, "think", "answer", "thinking_summary", "image_gen"])
            | JSON,
            "content": st.text(max_size=20) | JSON,
            "status": st.sampled_from(["typing", "finished"]) | JSON,
            "extra": JSON,
            "name": st.just("web_search") | JSON,
        },
    )
    choice = st.fixed_dictionaries({}, optional={"delta": delta | JSON})
    return draw(
        st.fixed_dictionaries(
            {}, optional={"choices": st.lists(choice | JSON, max_size=2) | JSON, "usage": JSON}
        )
    )


@FUZZ
@given(frames=st.lists(cn_frames() | JSON, max_size=6))
def test_cn_frames_become_events_or_typed_errors(frames: list[Any]) -> None:
    turn = Turn()
    for frame in frames:
        error = failures.failure_in(frame, credential="tk-m…asked(9)")
        assert error is None or isinstance(error, GatewayError)
        if isinstance(frame, dict):
            frame_events(frame, turn)
    turn.flush()


@FUZZ
@given(frames=st.lists(intl_frames() | JSON, max_size=6))
def test_intl_frames_become_events_or_typed_errors(frames: list[Any]) -> None:
    turn = IntlTurn()
    for frame in frames:
        error = failures.failure_in(frame, credential="eyJ…asked(9)")
        assert error is None or isinstance(error, GatewayError)
        if isinstance(frame, dict):
            intl_frame_events(frame, turn)


@FUZZ
@given(
    status=st.integers(100, 599),
    body=st.binary(max_size=200) | JSON.map(json.dumps).map(str.encode),
)
@example(status=500, body=DEEP.encode())
def test_error_bodies_are_classified_never_raised(status: int, body: bytes) -> None:
    for found in (
        failures.from_status(status, body, credential="c…d(4)"),
        failures.from_body("text/plain", body, credential="c…d(4)"),
    ):
        assert isinstance(found, GatewayError)


# The stream normaliser


ANSWER = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\ufffd"))


@FUZZ
@given(text=ANSWER, data=st.data())
def test_cumulative_frames_give_the_final_text_once(text: str, data: st.DataObject) -> None:
    """Growing snapshots, with duplicates, stale frames and half characters, then the whole."""
    ends = data.draw(cuts(len(text)))
    frames: list[str] = []
    for number, end in enumerate(ends):
        snapshot = text[:end]
        kind = data.draw(st.sampled_from(["plain", "duplicate", "stale", "half"]))
        if kind == "half" and end > max(ends[:number], default=0):
            snapshot = snapshot[:-1] + "\ufffd"  # the newest character cut at a byte boundary
        frames.append(snapshot)
        if kind == "duplicate":
            frames.append(snapshot)
        elif kind == "stale" and frames:
            frames.append(frames[0])
    differ = Differ()
    deltas = [differ.feed(frame) for frame in frames]
    deltas.append(differ.feed(text, final=True))
    deltas.append(differ.feed(text, final=True))  # a repeated final copy adds nothing
    assert "".join(deltas) == text
    assert all("\ufffd" not in delta for delta in deltas)


@FUZZ
@given(pieces=st.lists(st.text(min_size=1), max_size=8), repeat_final=st.booleans())
def test_incremental_frames_concatenate_and_a_final_copy_is_not_repeated(
    pieces: list[str], repeat_final: bool
) -> None:
    differ = Differ("incremental")
    out = "".join(differ.feed(piece) for piece in pieces)
    whole = "".join(pieces)
    tail = differ.feed(whole, final=True) if repeat_final and whole else ""
    assert out + tail == whole


# The tool-call parser


TOOLS = (Tool("get_weather"), Tool("Read"), Tool("run_cmd"))
PROSE = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="[<"), max_size=40)
ARGS = st.dictionaries(st.text(max_size=6), JSON, max_size=3)


def run_parser(pieces: list[str]) -> tuple[list[str], list[tuple[str, Any]], list[str]]:
    """Texts streamed before the end, texts at the end, and the calls (name, arguments)."""
    parser = ToolCallParser(TOOLS)
    streamed: list[str] = []
    calls: list[tuple[str, Any]] = []
    for piece in pieces:
        for out in parser.feed(piece):
            if isinstance(out, TextDelta):
                streamed.append(out.text)
            else:
                calls.append((out.call.name, json.loads(out.call.arguments)))
    final: list[str] = []
    for out in parser.finish():
        if isinstance(out, TextDelta):
            final.append(out.text)
        elif isinstance(out, ToolCalled):
            calls.append((out.call.name, json.loads(out.call.arguments)))
    return streamed, calls, final


@st.composite
def tool_answers(draw: st.DrawFn) -> tuple[str, str, list[tuple[str, Any]]]:
    prose = draw(PROSE)
    calls = draw(st.lists(st.tuples(st.sampled_from([t.name for t in TOOLS]), ARGS), max_size=3))
    native = draw(st.booleans())
    if native:
        block = "".join(
            f"<tool_call>\n{json.dumps({'name': n, 'arguments': a})}\n</tool_call>\n"
            for n, a in calls
        )
    else:
        inner = "\n".join(f"[call:{n}]{json.dumps(a, ensure_ascii=False)}[/call]" for n, a in calls)
        block = f"[function_calls]\n{inner}\n[/function_calls]"
    return prose + ("\n" + block if calls else ""), prose, calls


@FUZZ
@given(answer=tool_answers(), data=st.data())
def test_tool_calls_do_not_depend_on_how_the_answer_is_cut(
    answer: tuple[str, str, list[tuple[str, Any]]], data: st.DataObject
) -> None:
    text, prose, calls = answer
    streamed, found, final = run_parser(split(text, data.draw(cuts(len(text)))))
    assert found == calls
    if calls:
        assert "".join(streamed + final).rstrip("\n") == prose.rstrip("\n")
        assert not any(m in "".join(streamed + final) for m in ("[call", "<tool_call"))
    else:
        assert "".join(streamed + final) == text


MARKUP = st.lists(
    st.sampled_from([*"[]{}<>/:=\"' \n,x\\", *MARKERS, "[/call]", "</tool_call>", "```"]),
    max_size=30,
).map("".join)


@FUZZ
@given(text=MARKUP | st.text(max_size=60), data=st.data())
@example(text="[call:x]" + "{" * 3000 + '"a":1' + "}" * 3000 + "[/call]", data=None)
@example(text="[call:x]" + '{"a":' * 3000 + "1" + "}" * 3000 + "[/call]", data=None)
@example(text="<tool_call>" + '{"a":' * 3000 + "1" + "}" * 3000 + "</tool_call>", data=None)
def test_any_text_parses_without_error_and_without_losing_prose(
    text: str, data: st.DataObject | None
) -> None:
    pieces = split(text, data.draw(cuts(len(text)))) if data is not None else [text]
    streamed, calls, final = run_parser(pieces)
    for name, arguments in calls:
        assert isinstance(name, str) and isinstance(arguments, dict)
    if not calls:
        assert "".join(streamed + final) == text  # nothing read as a call: all of it is text
    assert calls == run_parser([text])[1]  # the same calls as from the answer in one piece


# Request parsers of every dialect: a canonical request, or the dialect's own 4xx


def openai_chat(body: Any) -> ChatRequest:
    return openai_wire.to_chat(openai_wire.parse_request(body))


def responses_chat(body: Any) -> ChatRequest:
    return responses_wire.to_chat(responses_wire.parse_request(body)).chat


def anthropic_chat(body: Any) -> ChatRequest:
    chat = anthropic_wire.to_chat(anthropic_wire.parse(anthropic_wire.MessagesRequest, body))
    anthropic_wire.counted_text(chat)
    return chat


def gemini_chat(body: Any) -> ChatRequest:
    gemini_wire.counted_text(gemini_wire.parse(gemini_wire.CountTokensRequest, body))
    return gemini_wire.to_chat("m", gemini_wire.parse(gemini_wire.GenerateContentRequest, body))


def image_request(body: Any) -> None:
    images._parse(body)


PARSERS: dict[str, tuple[Callable[[Any], ChatRequest | None], Callable[[GatewayError], Any]]] = {
    "openai": (openai_chat, openai.DIALECT.render_error),
    "responses": (responses_chat, openai.DIALECT.render_error),
    "anthropic": (anthropic_chat, anthropic_render.DIALECT.render_error),
    "gemini": (gemini_chat, gemini.DIALECT.render_error),
    "images": (image_request, openai.DIALECT.render_error),
}


def check_shape(dialect: str, body: dict[str, Any], error: GatewayError) -> None:
    assert 400 <= error.status < 500, (error.status, error.message)
    json.dumps(body)  # it can be sent
    if dialect == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
    elif dialect == "gemini":
        assert {"code", "message", "status"} <= set(body["error"])
        assert body["error"]["code"] == error.status
    else:
        assert {"message", "type", "code", "param"} <= set(body["error"])


def parse_or_refuse(dialect: str, body: Any) -> None:
    parser, render_error = PARSERS[dialect]
    try:
        chat = parser(body)
    except GatewayError as error:
        check_shape(dialect, render_error(error), error)
        return
    if chat is not None:
        fitted, _ = fit(chat, 400_000)
        assert isinstance(upstream_prompt(fitted), str)


@pytest.mark.parametrize("dialect", list(BODIES))
@FUZZ
@given(data=st.data())
def test_request_bodies_parse_or_are_refused_in_the_dialect_shape(
    dialect: str, data: st.DataObject
) -> None:
    parse_or_refuse(dialect, data.draw(BODIES[dialect] | JSON))


@pytest.mark.parametrize("dialect", list(BODIES))
@FEW
@given(body=JSON)
def test_any_json_value_parses_or_is_refused(dialect: str, body: Any) -> None:
    parse_or_refuse(dialect, body)


def _jwt_part(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_deeply_nested_text_inside_values_is_read_without_recursion_errors() -> None:
    """Depth the body check cannot see: JSON inside strings (arguments, a key, model output)."""
    deep_object = '{"a":' * 5000 + "1" + "}" * 5000
    history = {
        "model": "qwen",
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": DEEP}}]},
            {"role": "tool", "tool_call_id": "call_1_0", "content": "ok"},
        ],
    }
    parse_or_refuse("openai", history)
    token = f"{_jwt_part(DEEP)}.{_jwt_part(deep_object)}.c2ln"
    assert jwt_claims(token) is None
    assert json_answer(deep_object) == deep_object
