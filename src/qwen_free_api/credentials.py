"""Upstream credentials: which backend a ticket or JWT belongs to, and how to show it safely."""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from qwen_free_api.errors import BadRequest

Dialect = Literal["cn", "intl"]


@dataclass(frozen=True, slots=True)
class Credential:
    dialect: Dialect
    secret: str = field(repr=False)
    masked: str = field(init=False, compare=False)  # safe to log: `cn:abcd…wxyz(40)`
    # The JWT `exp` claim, decoded once: the pool asks for it for every candidate, every request.
    exp: float | None = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "masked", f"{self.dialect}:{mask(self.secret)}")
        object.__setattr__(self, "exp", _exp_claim(self.secret))

    def expires_at(self) -> float | None:
        """The JWT `exp` claim (intl), if any."""
        return self.exp

    def expired(self, now: float | None = None) -> bool:
        exp = self.expires_at()
        return exp is not None and exp <= (time.time() if now is None else now)


def _exp_claim(secret: str) -> float | None:
    claims = jwt_claims(secret)
    exp = claims.get("exp") if claims else None
    return float(exp) if isinstance(exp, int | float) else None


def mask(secret: str) -> str:
    """A recognisable but useless form of a secret: its ends and its length."""
    if len(secret) <= 12:
        return "*" * len(secret)
    return f"{secret[:4]}…{secret[-4:]}({len(secret)})"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT-shaped string, or None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        header = json.loads(_b64url(parts[0]))
        payload = json.loads(_b64url(parts[1]))
    except (ValueError, binascii.Error, RecursionError):
        return None
    if not isinstance(header, dict) or not isinstance(payload, dict):
        return None
    return payload


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def parse_credential(raw: str) -> Credential:
    """A JWT goes to intl, anything else to cn; `cn:` / `intl:` prefixes force a backend."""
    text = raw.strip()
    for dialect in ("cn", "intl"):
        if text.startswith(f"{dialect}:"):
            secret = text[len(dialect) + 1 :].strip()
            if not secret:
                raise BadRequest(f"empty {dialect} credential")
            return Credential("cn" if dialect == "cn" else "intl", _sendable(secret))
    if not text:
        raise BadRequest("empty credential")
    return Credential("intl" if jwt_claims(text) is not None else "cn", _sendable(text))


def _sendable(secret: str) -> str:
    """A secret that can travel in a cookie or header: printable ASCII, no space or `;`."""
    if not all("!" <= char <= "~" and char != ";" for char in secret):
        raise BadRequest("a credential must be printable ASCII without spaces or `;`")
    return secret


def parse_credentials(header_value: str) -> list[Credential]:
    """`T1,T2,…` as clients send them in seed mode."""
    return [parse_credential(item) for item in header_value.split(",") if item.strip()]
