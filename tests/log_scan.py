"""The log secret scan: keep every log record of the test session, then look for credentials."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from qwen_free_api.testing import FAKE_EMAIL, FAKE_PASSWORD

from support import CN_TICKET, CREDENTIALS, INTL_JWT

# Shapes of a secret, whatever its value: a ticket cookie, a bearer header with a real value
# (not a `<placeholder>`), a whole JWT.
PATTERNS = [
    re.compile(r"tongyi_sso_ticket=(?!<)[^\s;,'\"]+"),
    re.compile(r"authorization:\s*bearer\s+(?!<)[^\s'\"]+", re.IGNORECASE),
    re.compile(r"eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]+"),
]
EXTRA_SECRETS = ("sk-observe-client", "admin-observe-key")  # the keys test_observe uses


def known_secrets() -> list[str]:
    return sorted({*CREDENTIALS.values(), INTL_JWT, CN_TICKET, FAKE_EMAIL, FAKE_PASSWORD,
                   *EXTRA_SECRETS})  # fmt: skip


class Capture(logging.Handler):
    """Keeps every record, formatted with its exception and stack text."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # a record that cannot be formatted is kept raw
            self.lines.append(f"{record.name}: {record.msg!r} {record.args!r}")


def scan(lines: Iterable[str], secrets: Iterable[str] | None = None) -> list[str]:
    """The lines that contain a secret, each masked so that reporting it leaks nothing."""
    found = [s for s in (known_secrets() if secrets is None else secrets) if s]
    bad: list[str] = []
    for line in lines:
        if any(s in line for s in found) or any(p.search(line) for p in PATTERNS):
            bad.append(mask(line, found))
    return bad


def mask(line: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        line = line.replace(secret, "<SECRET>")
    for pattern in PATTERNS:
        line = pattern.sub("<SECRET>", line)
    return line


def install(capture: Capture) -> None:
    """Capture our loggers at DEBUG, and uvicorn's (its config stops them propagating)."""
    import uvicorn.config

    for name in ("uvicorn", "uvicorn.access"):
        uvicorn.config.LOGGING_CONFIG["loggers"][name]["propagate"] = True
    logging.getLogger().addHandler(capture)
    logging.getLogger("qwen_free_api").setLevel(logging.DEBUG)
