"""intl sign-in by email and password (spec §3.1), for accounts kept signed in (logins.py)."""

from __future__ import annotations

import hashlib
import json

from qwen_free_api.credentials import jwt_claims, mask
from qwen_free_api.errors import CredentialRejected, ProtocolError
from qwen_free_api.upstreams import failures
from qwen_free_api.upstreams.http import Http


async def sign_in(http: Http, base: str, email: str, password: str) -> str:
    """A fresh JWT; the password goes as its SHA-256 hex, as the web client sends it."""
    body = {"email": email, "password": hashlib.sha256(password.encode()).hexdigest()}
    headers = {"content-type": "application/json", "source": "web"}
    reply = await http.request(
        "POST", f"{base}/api/v1/auths/signin", headers=headers, body=json.dumps(body).encode()
    )
    if reply.status in (400, 401, 403):
        raise CredentialRejected(f"sign-in refused for {mask(email)} (HTTP {reply.status})")
    if reply.status != 200:
        raise failures.from_status(reply.status, reply.body, credential=mask(email))
    data = failures.parse_json(reply.body)
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or jwt_claims(token) is None:
        raise ProtocolError("the sign-in answer carried no token")
    return token
