"""Credentials go to the right backend and never show in full."""

from __future__ import annotations

import base64
import json

import pytest

from qwen_free_api.credentials import jwt_claims, mask, parse_credential, parse_credentials
from qwen_free_api.errors import BadRequest


def jwt(payload: dict[str, object]) -> str:
    def part(obj: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJl"


def test_jwt_goes_to_intl_and_ticket_to_cn() -> None:
    token = jwt({"id": "u1", "exp": 4102444800})
    assert parse_credential(token).dialect == "intl"
    assert parse_credential("ticket-abc.def").dialect == "cn"
    assert parse_credential("a.b.c").dialect == "cn"  # three parts but not JSON
    assert jwt_claims(token) == {"id": "u1", "exp": 4102444800}


def test_prefix_forces_the_backend() -> None:
    assert parse_credential("intl:opaque").dialect == "intl"
    token = jwt({"exp": 1})
    forced = parse_credential("cn:" + token)
    assert forced.dialect == "cn" and forced.secret == token


def test_seed_list_and_errors() -> None:
    creds = parse_credentials(" t1 , ,cn:t2")
    assert [(c.dialect, c.secret) for c in creds] == [("cn", "t1"), ("cn", "t2")]
    with pytest.raises(BadRequest):
        parse_credential("intl:")


def test_mask_hides_the_middle_and_expiry_is_read() -> None:
    secret = "ABCD" + "x" * 40 + "WXYZ"
    assert mask(secret) == "ABCD…WXYZ(48)"
    assert "x" not in mask(secret)
    assert mask("short") == "*****"
    assert parse_credential(jwt({"exp": 1})).expired()
    assert not parse_credential(jwt({"exp": 4102444800})).expired()
