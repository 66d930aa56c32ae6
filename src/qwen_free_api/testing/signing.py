"""The cn request signature (protocol §8.1.5) as pure functions: compute and verify `clt-acs-*`."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SIGN_VERSION = "1.0.0"
REQT_WINDOW_MS = 5 * 60 * 1000


def secret_of(salt: str, reqt: str) -> str:
    """The HMAC key: the salt's base64 text, a colon, the request time digits."""
    return f"{salt}:{reqt}"


def _mac(secret: str, message: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def body_fingerprint(secret: str, body: bytes) -> str:
    """`clt-acs-bfg`: base64(HMAC-SHA256(secret, body bytes))."""
    return _mac(secret, body)


def sign_value(
    secret: str, dvidn: str, values: str, kp: str, bfg: str, *, kp_first: bool = False
) -> str:
    """`clt-acs-sign`; kp after the values (QCM) by default, before them (CWA) with `kp_first`."""
    middle = kp + values if kp_first else values + kp
    return _mac(secret, (dvidn + SIGN_VERSION + middle + bfg).encode("utf-8"))


@dataclass(frozen=True)
class Verdict:
    """Result of a signature check: `ok`, else the first reason it failed."""

    ok: bool
    reason: str = ""


def verify_signature(
    headers: Mapping[str, str],
    query: Sequence[tuple[str, str]],
    body: bytes,
    *,
    now_ms: int,
    window_ms: int = REQT_WINDOW_MS,
) -> Verdict:
    """Check reqt window, request-params, bfg and sign (salt validity is the caller's job).

    `headers` use lower-case names; `query` is the URL's decoded pairs in order. Both kp
    placements are accepted, and an empty `eo-clt-acs-kp` makes them coincide.
    """
    salt = headers.get("eo-clt-sacsft", "")
    dvidn = headers.get("eo-clt-dvidn", "")
    reqt = headers.get("clt-acs-reqt", "")
    if not salt or not dvidn:
        return Verdict(False, "missing eo-clt-sacsft or eo-clt-dvidn")
    if not reqt.isdigit() or abs(int(reqt) - now_ms) > window_ms:
        return Verdict(False, f"clt-acs-reqt {reqt!r} outside the window")
    keys = ",".join(key for key, _ in query)
    if headers.get("clt-acs-request-params", "") != keys:
        return Verdict(False, f"clt-acs-request-params does not match the query keys {keys!r}")
    secret = secret_of(salt, reqt)
    bfg = headers.get("clt-acs-bfg", "")
    expected_bfg = body_fingerprint(secret, body) if body else ""
    if not hmac.compare_digest(bfg, expected_bfg):
        return Verdict(False, "clt-acs-bfg does not match the body")
    values = "".join(value for _, value in query)
    kp = headers.get("eo-clt-acs-kp", "")
    sign = headers.get("clt-acs-sign", "")
    for kp_first in (False, True):
        if hmac.compare_digest(sign, sign_value(secret, dvidn, values, kp, bfg, kp_first=kp_first)):
            return Verdict(True)
    return Verdict(False, "clt-acs-sign does not match")
