"""cn login: the ticket cookie and which tickets the fake treats as logged in."""

from __future__ import annotations

TICKET_COOKIE = "tongyi_sso_ticket"


def ticket_valid(ticket: str | None) -> bool:
    """Any non-empty ticket is logged in, except those starting with `bad` or `expired`."""
    return bool(ticket) and not str(ticket).startswith(("bad", "expired"))
