"""The one error tree of the gateway; every class carries its HTTP status and kind.

    GatewayError (500 internal)
    ├── BadRequest (400 invalid_request)
    │   ├── NotFound (404 invalid_request)
    │   ├── Conflict (409 invalid_request)
    │   └── PayloadTooLarge (413 invalid_request)
    ├── Unauthenticated (401 authentication)            client key missing or wrong
    ├── NoCredential (503 no_credential)                nothing to call the upstream with
    ├── ShuttingDown (503 shutting_down)                the server stopped before the answer did
    └── UpstreamError (502 upstream)                    anything the upstream did wrong
        ├── CredentialRejected (401 credential_rejected) ticket/JWT refused by the upstream
        ├── RateLimited (429 rate_limited)              quota or rate limit; carries retry_after
        ├── Blocked (503 blocked)                       WAF or captcha; carries retry_after
        ├── Overloaded (503 blocked)                    HTTP 503: transient, not a WAF; retry_after
        ├── SigningFailed (502 signing)                 cn request signature refused
        ├── ContextTooLong (400 context_length)          prompt too long for the model
        ├── ContentFiltered (400 content_filter)         moderation stopped the answer
        ├── UpstreamTimeout (504 timeout)               no answer within the time limit
        └── ProtocolError (502 protocol)                upstream said something we cannot parse

Errors are raised where the fact is seen (the upstream adapter reads a status or a code);
client dialects only translate `status` and `kind` into their own envelope.
"""

from __future__ import annotations

from typing import ClassVar, Literal

ErrorKind = Literal[
    "internal",
    "invalid_request",
    "authentication",
    "no_credential",
    "shutting_down",
    "upstream",
    "credential_rejected",
    "rate_limited",
    "blocked",
    "signing",
    "context_length",
    "content_filter",
    "timeout",
    "protocol",
]


class GatewayError(Exception):
    """Base of every error the gateway reports to a client."""

    status: ClassVar[int] = 500
    kind: ClassVar[ErrorKind] = "internal"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        retry_after: int | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.retry_after = retry_after
        self.code = code

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}


class BadRequest(GatewayError):
    status = 400
    kind: ClassVar[ErrorKind] = "invalid_request"


class NotFound(BadRequest):
    status = 404


class Conflict(BadRequest):
    status = 409


class PayloadTooLarge(BadRequest):
    status = 413

    def headers(self) -> dict[str, str]:
        # The rest of the body is never read: the connection cannot carry another request.
        return {**super().headers(), "Connection": "close"}


class Unauthenticated(GatewayError):
    status = 401
    kind: ClassVar[ErrorKind] = "authentication"


class NoCredential(GatewayError):
    status = 503
    kind: ClassVar[ErrorKind] = "no_credential"


class ShuttingDown(GatewayError):
    status = 503
    kind: ClassVar[ErrorKind] = "shutting_down"


class UpstreamError(GatewayError):
    status = 502
    kind: ClassVar[ErrorKind] = "upstream"


class CredentialRejected(UpstreamError):
    status = 401
    kind: ClassVar[ErrorKind] = "credential_rejected"


class RateLimited(UpstreamError):
    status = 429
    kind: ClassVar[ErrorKind] = "rate_limited"


class Blocked(UpstreamError):
    status = 503
    kind: ClassVar[ErrorKind] = "blocked"


class Overloaded(UpstreamError):
    """The upstream answered HTTP 503: a transient failure of the account's request (it cools
    down briefly), not a WAF challenge that pauses the whole backend."""

    status = 503
    kind: ClassVar[ErrorKind] = "blocked"


class SigningFailed(UpstreamError):
    status = 502
    kind: ClassVar[ErrorKind] = "signing"


class ContextTooLong(UpstreamError):
    status = 400
    kind: ClassVar[ErrorKind] = "context_length"


class ContentFiltered(UpstreamError):
    status = 400
    kind: ClassVar[ErrorKind] = "content_filter"


class UpstreamTimeout(UpstreamError):
    status = 504
    kind: ClassVar[ErrorKind] = "timeout"


class ProtocolError(UpstreamError):
    status = 502
    kind: ClassVar[ErrorKind] = "protocol"
