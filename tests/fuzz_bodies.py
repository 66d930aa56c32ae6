"""Hypothesis strategies for request bodies of every dialect: JSON of any shape, and bodies
shaped like each dialect's requests (right keys, any values) so fuzzing gets past the first
check and into the translation code."""

from __future__ import annotations

from hypothesis import strategies as st

# Nested deeper than Python's stack: in a string value, where the body's depth check cannot see.
DEEP = "[" * 50_000 + "]" * 50_000
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)

PART = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "input_text", "image_url", "file", "input_file", "x"])},
    optional={
        "text": st.text(max_size=10) | JSON,
        "image_url": st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "http://x/y.png"])
        | JSON,
        "file": JSON,
    },
)
CALL = st.fixed_dictionaries(
    {"function": st.fixed_dictionaries({"name": st.text(max_size=6) | JSON}, optional={
        "arguments": st.sampled_from(['{"a":1}', "[", DEEP]) | JSON})},
    optional={"id": JSON, "type": JSON},
)  # fmt: skip
OPENAI_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just("qwen") | JSON,
        "messages": st.lists(
            st.fixed_dictionaries(
                {"role": st.sampled_from(["user", "system", "assistant", "tool", "x"]) | JSON},
                optional={
                    "content": st.text(max_size=10) | st.lists(PART | JSON, max_size=3) | JSON,
                    "tool_calls": st.lists(CALL | JSON, max_size=2) | JSON,
                    "tool_call_id": JSON,
                    "function_call": JSON,
                },
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "tools": st.lists(
            st.fixed_dictionaries({"type": st.just("function") | JSON, "function": JSON}) | JSON,
            max_size=2,
        )
        | JSON,
        "tool_choice": st.sampled_from(["auto", "none", "required"]) | JSON,
        "response_format": st.fixed_dictionaries(
            {"type": st.sampled_from(["json_object", "json_schema", "text"]) | JSON},
            optional={"json_schema": JSON},
        )
        | JSON,
        "stop": JSON,
        "stream": JSON,
        "stream_options": JSON,
        "reasoning_effort": JSON,
        "search_type": JSON,
        "functions": JSON,
        "function_call": JSON,
    },
)
RESPONSES_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just("qwen") | JSON,
        "input": st.text(max_size=10)
        | st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(
                        ["message", "function_call", "function_call_output", "reasoning"]
                    )
                    | JSON
                },
                optional={
                    "role": st.sampled_from(["user", "assistant", "developer"]) | JSON,
                    "content": st.text(max_size=10) | st.lists(PART | JSON, max_size=2) | JSON,
                    "name": JSON,
                    "call_id": JSON,
                    "arguments": JSON,
                    "output": JSON,
                    "namespace": JSON,
                },
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "instructions": JSON,
        "tools": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["function", "namespace", "web_search"]) | JSON},
                optional={"name": JSON, "tools": JSON, "parameters": JSON},
            )
            | JSON,
            max_size=2,
        )
        | JSON,
        "tool_choice": JSON,
        "reasoning": JSON,
        "text": st.fixed_dictionaries({"format": JSON}) | JSON,
        "previous_response_id": JSON,
    },
)
BLOCK = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            ["text", "tool_use", "tool_result", "image", "document", "thinking", "x"]
        )
        | JSON
    },
    optional={
        "text": JSON,
        "id": JSON,
        "name": JSON,
        "input": JSON,
        "tool_use_id": JSON,
        "content": JSON,
        "source": st.fixed_dictionaries(
            {"type": st.sampled_from(["base64", "url", "text", "file"]) | JSON},
            optional={"data": JSON, "media_type": JSON, "url": JSON},
        )
        | JSON,
    },
)
ANTHROPIC_BODY = st.fixed_dictionaries(
    {},
    optional={
        "model": st.just("claude") | JSON,
        "max_tokens": st.integers() | JSON,
        "messages": st.lists(
            st.fixed_dictionaries(
                {
                    "role": st.sampled_from(["user", "assistant", "system"]) | JSON,
                    "content": st.text(max_size=10) | st.lists(BLOCK | JSON, max_size=3) | JSON,
                }
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "system": st.text(max_size=10) | st.lists(BLOCK | JSON, max_size=2) | JSON,
        "tools": st.lists(
            st.fixed_dictionaries({}, optional={"name": JSON, "type": JSON, "input_schema": JSON})
            | JSON,
            max_size=2,
        )
        | JSON,
        "tool_choice": JSON,
        "thinking": JSON,
        "stop_sequences": JSON,
    },
)
GEMINI_PART = st.fixed_dictionaries(
    {},
    optional={
        "text": JSON,
        "functionCall": st.fixed_dictionaries({"name": JSON}, optional={"args": JSON}) | JSON,
        "function_response": st.fixed_dictionaries(
            {"name": JSON}, optional={"response": JSON, "parts": JSON}
        )
        | JSON,
        "inlineData": st.fixed_dictionaries({}, optional={"mimeType": JSON, "data": JSON}) | JSON,
        "fileData": st.fixed_dictionaries({}, optional={"mimeType": JSON, "fileUri": JSON}) | JSON,
        "thought": JSON,
    },
)
GEMINI_BODY = st.fixed_dictionaries(
    {},
    optional={
        "contents": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "role": st.sampled_from(["user", "model", "function", "x"]) | JSON,
                    "parts": st.lists(GEMINI_PART | JSON, max_size=3) | JSON,
                },
            )
            | JSON,
            max_size=3,
        )
        | JSON,
        "systemInstruction": JSON,
        "tools": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "functionDeclarations": st.lists(
                        st.fixed_dictionaries(
                            {"name": JSON},
                            optional={"parameters": JSON, "parametersJsonSchema": JSON},
                        )
                        | JSON,
                        max_size=2,
                    )
                    | JSON,
                    "googleSearch": JSON,
                },
            )
            | JSON,
            max_size=2,
        )
        | JSON,
        "toolConfig": JSON,
        "generationConfig": JSON,
    },
)
IMAGES_BODY = st.fixed_dictionaries(
    {}, optional={"prompt": JSON, "n": JSON, "size": JSON, "response_format": JSON}
)
BODIES = {
    "openai": OPENAI_BODY,
    "responses": RESPONSES_BODY,
    "anthropic": ANTHROPIC_BODY,
    "gemini": GEMINI_BODY,
    "images": IMAGES_BODY,
}
