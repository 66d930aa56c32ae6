"""intl (chat.qwen.ai) credentials: fake JWTs, the token check, sign-in and the user endpoints.

The fake account is `user@example.com` with password `password` (sent as its sha256 hex, as the
web client does). A token is valid when it has three base64url parts and its payload's `exp` is in
the future; the signature is not checked. A payload field `"scenario": "<error name>"` forces that
error on every chat of the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

if TYPE_CHECKING:
    from qwen_free_api.testing.state import FakeState

FAKE_EMAIL = "user@example.com"
FAKE_PASSWORD = "password"
FAKE_USER_ID = "7f3c2a10-0000-4000-8000-00000000f00d"
_SIGNING_KEY = b"qwen-free-api fake upstream"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def make_token(
    *,
    expires_in: float = 30 * 24 * 3600,
    scenario: str | None = None,
    user_id: str = FAKE_USER_ID,
    email: str = FAKE_EMAIL,
) -> str:
    """A JWT the fake accepts (or rejects, with a negative `expires_in`)."""
    payload: dict[str, Any] = {
        "id": user_id,
        "email": email,
        "last_password_change": 1_700_000_000,
        "exp": int(time.time() + expires_in),
    }
    if scenario is not None:
        payload["scenario"] = scenario
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    body = _b64(json.dumps(payload, separators=(",", ":")).encode())
    sig = hmac.new(_SIGNING_KEY, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a valid token, else None (garbled, no `exp`, or expired)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except ValueError:
        return None
    if not isinstance(claims, dict):
        return None
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp <= time.time():
        return None
    return claims


def request_token(request: Request) -> str:
    """The JWT from `Authorization: Bearer …`, else from the `token` cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return request.cookies.get("token", "")


def request_claims(request: Request) -> dict[str, Any] | None:
    """The caller's claims, or None when not logged in (a `scenario: revoked` token never is)."""
    claims = token_claims(request_token(request))
    return None if claims is None or claims.get("scenario") == "revoked" else claims


def envelope(data: Any, *, success: bool = True) -> dict[str, Any]:
    """The intl JSON envelope."""
    return {"success": success, "request_id": str(uuid.uuid4()), "data": data}


def failure(code: str, details: str) -> dict[str, Any]:
    """A failed envelope with `data.code` / `data.details`."""
    return envelope({"code": code, "details": details}, success=False)


def unauthorized() -> Response:
    """HTTP 401 for a missing, garbled or expired token."""
    return JSONResponse(failure("Unauthorized", "token is invalid or expired"), status_code=401)


class AccountEndpoints:
    """Sign-in and the two token-check endpoints."""

    def __init__(self, state: FakeState) -> None:
        self._state = state

    def routes(self) -> list[Route]:
        """The account paths."""
        return [
            Route("/api/v1/auths/signin", self.signin, methods=["POST"]),
            Route("/api/v2/user", self.user, methods=["GET"]),
            Route("/api/v2/users/status", self.status, methods=["GET"]),
        ]

    async def signin(self, request: Request) -> Response:
        """A fresh token for the fake account; 401 for anything else."""
        try:
            body = json.loads(await request.body())
        except ValueError:
            body = {}
        wanted = hashlib.sha256(FAKE_PASSWORD.encode()).hexdigest()
        if (
            not isinstance(body, dict)
            or body.get("email") != FAKE_EMAIL
            or body.get("password") != wanted
        ):
            return JSONResponse(
                {"detail": "The email or password provided is incorrect."}, status_code=401
            )
        token = make_token(expires_in=self._state.signin_lifetime)
        claims = token_claims(token) or {}
        user = _user(claims)
        return JSONResponse(
            {**user, "token": token, "token_type": "Bearer", "expires_at": claims.get("exp")}
        )

    async def user(self, request: Request) -> Response:
        """The logged-in user, or 401."""
        claims = request_claims(request)
        if claims is None:
            return unauthorized()
        return JSONResponse(envelope(_user(claims)))

    async def status(self, request: Request) -> Response:
        """`{"success": true, "data": true}`, or 401."""
        if request_claims(request) is None:
            return unauthorized()
        return JSONResponse(envelope(True))


def _user(claims: dict[str, Any]) -> dict[str, Any]:
    email = str(claims.get("email", FAKE_EMAIL))
    return {
        "id": str(claims.get("id", FAKE_USER_ID)),
        "email": email,
        "name": email.split("@")[0],
        "role": "user",
        "profile_image_url": "",
    }
