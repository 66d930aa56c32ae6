"""The hot-path JSON helpers give exactly what the json module gives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qwen_free_api import jsonfast

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(st.text())
def test_string_is_dumps_without_ascii_escapes(text: str) -> None:
    assert jsonfast.string(text) == json.dumps(text, ensure_ascii=False)


@given(JSON_VALUES)
def test_compact_is_compact_dumps(value: Any) -> None:
    expected = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert jsonfast.compact(value) == expected


@given(JSON_VALUES, st.sampled_from(["", " ", "\n", " \r\n\t"]))
def test_loads_reads_what_dumps_wrote(value: Any, space: str) -> None:
    text = space + json.dumps(value, ensure_ascii=False) + space
    assert jsonfast.loads(text) == json.loads(text)


@given(st.text(max_size=40))
def test_loads_fails_where_json_fails(text: str) -> None:
    try:
        expected = json.loads(text)
    except json.JSONDecodeError as error:
        with pytest.raises(json.JSONDecodeError) as caught:
            jsonfast.loads(text)
        assert (caught.value.msg, caught.value.pos) == (error.msg, error.pos)
    else:
        assert jsonfast.loads(text) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", '{"a": 1} x', '{"a": 1}{}', "\ufeff{}", "[1,", '{"a" 1}', "nul"]
)
def test_loads_errors_match(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(json.JSONDecodeError) as caught:
        jsonfast.loads(text)
    assert (caught.value.msg, caught.value.pos) == (expected.value.msg, expected.value.pos)


def test_loads_keeps_no_state_between_calls() -> None:
    first = jsonfast.loads('{"key": {"key": 1}}')
    second = jsonfast.loads('{"key": 2}')
    assert first == {"key": {"key": 1}} and second == {"key": 2}
