"""JSON on the streaming hot path: the standard library's own C routines, without set-up per call.

`json.dumps(value, ensure_ascii=False, ...)` builds a new encoder object on every call, and
`json.loads` passes through two Python layers before reaching the C scanner; once per streamed
delta, that set-up costs more than the work. These are the same routines, called directly, and
give the same results (tests/test_jsonfast.py compares them with the originals).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

# json.dumps(text, ensure_ascii=False) for a str: quoted and escaped, non-ASCII kept as is.
string: Callable[[str], str] = encode_basestring
# json.dumps(value, ensure_ascii=False, separators=(",", ":")); the encoder keeps no state
# between calls, so one is shared.
compact: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_scan: Any = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # C; memo cleared per call
_space = re.compile(r"[ \t\n\r]*").match  # json.decoder's own WHITESPACE


def loads(text: str) -> Any:
    """json.loads for a str: the same value, or the same JSONDecodeError (a ValueError)."""
    if text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    start = _space(text, 0).end()  # type: ignore[union-attr]
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise json.JSONDecodeError("Expecting value", text, stop.value) from None
    end = _space(text, end).end()  # type: ignore[union-attr]
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value
