"""Reading tool calls out of streamed model text: nothing of the markup leaks at any split,
both call forms are read, and the JSON mistakes models make are repaired."""

from __future__ import annotations

import json

import pytest

from qwen_free_api.chat import ChatRequest, Message, Tool, ToolCall, ToolChoice
from qwen_free_api.events import Finish, StreamEvent, TextDelta, ToolCalled
from qwen_free_api.prompt import fit, upstream_prompt
from qwen_free_api.shaping import Shaper, json_answer
from qwen_free_api.tool_prompt import compact_schema, fold
from qwen_free_api.toolcalls import ToolCallParser, repair_json

TOOLS = (Tool("get_weather", "Weather of a city"), Tool("Bash", "Run a command"))
BLOCK = (
    "Let me look.\n[function_calls]\n"
    '[call:get_weather]{"city": "Paris"}[/call]\n'
    '[call:Bash]{"command": "ls -la"}[/call]\n'
    "[/function_calls]"
)


def run(text: str, sizes: int | list[int] = 1, tools: tuple[Tool, ...] = TOOLS) -> list[Parsed]:
    parser = ToolCallParser(tools)
    out: list[Parsed] = []
    pieces = _split(text, sizes)
    for piece in pieces:
        out.extend(parser.feed(piece))
    out.extend(parser.finish())
    return out


Parsed = TextDelta | ToolCalled


def _split(text: str, sizes: int | list[int]) -> list[str]:
    if isinstance(sizes, int):
        return [text[i : i + sizes] for i in range(0, len(text), sizes)]
    pieces, start = [], 0
    for size in sizes:
        pieces.append(text[start : start + size])
        start += size
    pieces.append(text[start:])
    return [p for p in pieces if p]


def text_of(out: list[Parsed]) -> str:
    return "".join(e.text for e in out if isinstance(e, TextDelta))


def calls_of(out: list[Parsed]) -> list[tuple[str, dict[str, object]]]:
    return [(e.call.name, json.loads(e.call.arguments)) for e in out if isinstance(e, ToolCalled)]


@pytest.mark.parametrize("cut", range(1, len(BLOCK)))
def test_a_block_split_anywhere_yields_calls_and_no_markup(cut: int) -> None:
    out = run(BLOCK, [cut])
    assert text_of(out) == "Let me look.\n"
    assert calls_of(out) == [("get_weather", {"city": "Paris"}), ("Bash", {"command": "ls -la"})]


def test_calls_come_out_as_soon_as_they_are_complete() -> None:
    parser = ToolCallParser(TOOLS)
    first = parser.feed('[function_calls]\n[call:get_weather]{"city": "Rome"}[/call]\n')
    assert [type(e) for e in first] == [ToolCalled]
    assert parser.feed("[/function_calls]") == []


def test_plain_text_with_brackets_streams_through() -> None:
    text = "Arrays look like [1, 2] and tags like <b>; [call me] maybe. [func"
    out = run(text, 1)
    assert text_of(out) == text
    assert calls_of(out) == []


def test_text_is_not_held_longer_than_a_marker() -> None:
    parser = ToolCallParser(TOOLS)
    assert text_of(parser.feed("hello [fun")) == "hello "
    assert text_of(parser.feed("ny] world")) == "[funny] world"


def test_native_qwen_form_is_read() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert calls_of(run(text, 2)) == [("get_weather", {"city": "Oslo"})]


@pytest.mark.parametrize(
    "arguments",
    [
        '{"command": "echo a\nb"}',  # raw newline inside a string
        '{"command": "echo a\\nb",}',  # trailing comma
        "{command: 'echo a\\nb'}",  # bare key, single quotes
        '```json\n{"command": "echo a\\nb"}\n```',  # fenced
    ],
)
def test_slightly_wrong_arguments_are_repaired(arguments: str) -> None:
    out = run(f"[function_calls]\n[call:Bash]{arguments}[/call]\n[/function_calls]", 5)
    assert calls_of(out) == [("Bash", {"command": "echo a\nb"})]


def test_tool_names_are_matched_to_the_offered_spelling() -> None:
    out = run('[function_calls][call:bash]{"command": "pwd"}[/call][/function_calls]')
    assert calls_of(out) == [("Bash", {"command": "pwd"})]


def test_an_unterminated_block_still_gives_its_call() -> None:
    out = run('Checking.\n[function_calls]\n[call:Bash]{"command": "pwd"}', 4)
    assert calls_of(out) == [("Bash", {"command": "pwd"})]
    assert text_of(out) == "Checking.\n"


def test_unreadable_markup_is_released_as_text() -> None:
    text = "The syntax is [call:NAME]{oops and that is all"
    out = run(text, 3)
    assert calls_of(out) == []
    assert text_of(out) == text


def test_prose_after_the_calls_is_dropped() -> None:
    out = run(BLOCK + "\nI have called the tools.", 7)
    assert text_of(out) == "Let me look.\n"
    assert len(calls_of(out)) == 2


def test_call_ids_are_unique() -> None:
    out = run(BLOCK)
    ids = [e.call.id for e in out if isinstance(e, ToolCalled)]
    assert len(set(ids)) == 2 and all(i.startswith("call_") for i in ids)


def test_repair_refuses_what_is_not_an_object() -> None:
    assert repair_json("[1, 2]") is None
    assert repair_json("not json at all") is None


def shaped(chat: ChatRequest, text: str, size: int = 3) -> list[StreamEvent]:
    shaper = Shaper(chat)
    out: list[StreamEvent] = []
    for piece in _split(text, size):
        out.extend(shaper.text(piece))
    out.extend(shaper.finish(Finish()))
    return out


def chat_with(**fields: object) -> ChatRequest:
    return ChatRequest("qwen", (Message("user", "hi"),), **fields)  # type: ignore[arg-type]


def test_stop_sequences_cut_the_answer_at_any_split() -> None:
    for size in range(1, 8):
        out = shaped(chat_with(stop=("STOP",)), "Hello STOP world", size)
        assert "".join(e.text for e in out if isinstance(e, TextDelta)) == "Hello "
        assert out[-1] == Finish("stop_sequence", stop_sequence="STOP")


def test_json_mode_answers_only_the_json() -> None:
    out = shaped(chat_with(json_schema={}), 'Sure!\n```json\n{"score": 7}\n```', 4)
    texts = [e.text for e in out if isinstance(e, TextDelta)]
    assert len(texts) == 1 and json.loads(texts[0]) == {"score": 7}
    assert json_answer("[1, 2] trailing") == "[1, 2]"


def test_tool_choice_none_leaves_markup_alone() -> None:
    chat = chat_with(tools=TOOLS, tool_choice=ToolChoice("none"))
    out = shaped(chat, BLOCK)
    assert "".join(e.text for e in out if isinstance(e, TextDelta)) == BLOCK
    assert "[function_calls]" not in upstream_prompt(chat).split("hi")[0]


def test_tool_turns_fold_into_the_prompt() -> None:
    call = ToolCall("call_1", "get_weather", '{"city": "Paris"}')
    messages = (
        Message("user", "weather?"),
        Message("assistant", "", tool_calls=(call,)),
        Message("tool", "22C", tool_call_id="call_1"),
        Message("tool", "boom", tool_call_id="call_2", is_error=True),
    )
    prompt = upstream_prompt(ChatRequest("qwen", messages, tools=TOOLS))
    assert '[call:get_weather]{"city":"Paris"}[/call]' in prompt
    assert "[TOOL_RESULT for call_1] 22C" in prompt
    assert "[TOOL_RESULT for call_2] (the tool failed) boom" in prompt
    assert prompt.index("## Available tools") < prompt.index("User: weather?")
    assert fold(messages[1]).startswith("[function_calls]")


def test_large_agent_tool_sets_fit_without_dropping_tools() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "title": "Input",
        "additionalProperties": False,
        "properties": {"title": {"type": "string", "title": "T", "description": "d" * 200}},
    }
    tools = tuple(Tool(f"Tool{i}", "x" * 2500, schema) for i in range(24))
    messages = (Message("system", "s" * 6000), Message("user", "u" * 3000))
    chat, dropped = fit(ChatRequest("qwen", messages, tools=tools), 400_000)
    prompt = upstream_prompt(chat)
    assert dropped == 0
    assert all(f"### Tool{i}\n" in prompt for i in range(24))
    assert "$schema" not in prompt and '"title":{"type":"string"' in prompt
    assert compact_schema(schema)["properties"]["title"] == {
        "type": "string",
        "description": "d" * 200,
    }
