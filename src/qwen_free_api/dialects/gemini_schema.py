"""Gemini schemas as JSON schema.

Google's own `Schema` (OpenAPI-like: UPPERCASE types, `nullable`, int64 limits as strings, keys
in either style) becomes JSON schema; a JSON schema the client sent (`parametersJsonSchema`,
`responseJsonSchema`) only gets its type names lower-cased, since Google clients send "OBJECT".
"""

from __future__ import annotations

import re
from typing import Any

SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "patternProperties"})
SCHEMA_VALUES = frozenset({"default", "enum", "const", "example", "examples"})
INT_LIMITS = frozenset(
    {"minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"}
)
_SNAKE_BOUNDARY = re.compile(r"_([a-z])")


def lower_types(schema: Any) -> Any:
    """A JSON schema with its `type` names in lower case (Google clients send "OBJECT")."""
    if isinstance(schema, list):
        return [lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type":
            out[key] = _lower_type(value)
        elif key in SCHEMA_VALUES:
            out[key] = value
        elif key in SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: lower_types(sub) for name, sub in value.items()}
        else:
            out[key] = lower_types(value)
    return out


def from_openapi(schema: Any) -> Any:
    """Google's `Schema` object (either key style) as a JSON schema."""
    if isinstance(schema, list):
        return [from_openapi(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    nullable = False
    for key, value in schema.items():
        name = _SNAKE_BOUNDARY.sub(lambda m: m.group(1).upper(), key)
        if name == "type":
            if str(value).upper() != "TYPE_UNSPECIFIED":
                out["type"] = _lower_type(value)
        elif name == "nullable":
            nullable = bool(value)
        elif name == "propertyOrdering":
            continue
        elif name in SCHEMA_VALUES:
            out[name] = value
        elif name in SCHEMA_MAPS and isinstance(value, dict):
            out[name] = {prop: from_openapi(sub) for prop, sub in value.items()}
        elif name in INT_LIMITS and isinstance(value, str) and value.isdigit():
            out[name] = int(value)
        else:
            out[name] = from_openapi(value)
    if nullable and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _lower_type(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return [item.lower() if isinstance(item, str) else item for item in value]
    return value
