"""What is known about the request being served, noted where it becomes known.

The request middleware puts a fresh dict in a context variable; tasks spawned while serving the
request (a stream's producer) copy the context and so share the dict. Code that learns a fact
(which credential answered, when the first token went out) notes it here; outside a request
nothing happens. Only safe facts belong here: ids, names, times — never a secret or a prompt.
"""

from __future__ import annotations

import time
from contextvars import ContextVar, Token
from typing import Any

Facts = dict[str, Any]

_current: ContextVar[Facts | None] = ContextVar("qfa_request_facts", default=None)


def begin(facts: Facts) -> Token[Facts | None]:
    return _current.set(facts)


def end(token: Token[Facts | None]) -> None:
    _current.reset(token)


def current() -> Facts | None:
    return _current.get()


def note(**facts: Any) -> None:
    found = _current.get()
    if found is not None:
        found.update(facts)


def leased(upstream: str, credential_id: str) -> None:
    """The pool lent this credential (its one-way id, never the secret) to the request."""
    note(upstream=upstream, credential=credential_id)


def failed(upstream: str, kind: str) -> None:
    """An upstream attempt of the request failed with the error class `kind`."""
    found = _current.get()
    if found is not None:
        found.setdefault("failures", []).append((upstream, kind))


def first_token() -> None:
    """The first frame of a streamed answer is going out now."""
    found = _current.get()
    if found is not None:
        found.setdefault("first_token", time.monotonic())
