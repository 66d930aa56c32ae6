"""Replacing the secrets of recorded upstream exchanges, so a recording can be shared.

Two passes. First every place known to hold a secret is read: credential headers and cookies,
the cn signing headers (`eo-clt-*`, `clt-acs-*`), JSON fields named like a token, ticket,
secret, password, signature, salt or email (in bodies and in each SSE frame), `{key, value}`
header pairs the upstream issues, and the signing query values of URLs (OSS security tokens,
`auth_key`, `key`, `Signature`…). Then every occurrence of every secret found, anywhere in
any exchange (URLs, headers, bodies, in plain, URL-encoded and JSON-escaped forms), becomes
`<redacted-N>` (the same N for the same secret), and whatever still looks like a JWT, an email
address or a ticket cookie is replaced too.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Iterator
from typing import Any

SENSITIVE_NAME = re.compile(
    r"token|ticket|secret|passw|authoriz|signature|sign$|^sign|actkn|bacsft|dvidn|sacsft"
    r"|cookie|e-?mail|access_?key|auth_?key|security|credential|^key$|^ut$|device-id|salt",
    re.IGNORECASE,
)
SECRET_HEADERS = {"cookie", "set-cookie", "authorization", "x-device-id", "x-xsrf-token"}
SIGNING_PREFIXES = ("eo-clt-", "clt-acs-")
# Signing headers that carry no secret (versions, counts, timestamps, parameter names): still
# replaced where they are, but not hunted for elsewhere in the recording.
PLAIN_SIGNING = {
    "clt-acs-caer",
    "clt-acs-reqt",
    "clt-acs-request-params",
    "eo-clt-snver",
    "eo-clt-acs-ve",
    "eo-clt-acs-kp",
    "eo-clt-sftcnt",
    "eo-clt-acs-bx-intss",
    "eo-clt-actkn-dl",
}
MIN_LITERAL = 8  # shorter values are replaced where they stand, never hunted elsewhere
JWT = re.compile(r"eyJ[\w-]{4,}\.eyJ[\w-]{4,}\.[\w-]+")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
TICKET_COOKIE = re.compile(r"(tongyi_sso_ticket=|token=)(?!<)[^;\s\"',&]+")
URL = re.compile(r"https?://[^\s\"'<>\\]+")
PLACEHOLDER = "<redacted>"


def secret_header(name: str) -> bool:
    """Whether a header's value is a secret wherever it appears."""
    lowered = name.lower()
    if lowered in SECRET_HEADERS or lowered.startswith(SIGNING_PREFIXES):
        return True
    return bool(SENSITIVE_NAME.search(lowered))


class Scrubber:
    """Collects secrets (`learn_*`), then replaces them everywhere (`text`, `data`, `headers`)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: dict[str, int] = {}
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        """Treat `secret` as one: every occurrence will be replaced."""
        if len(secret) >= MIN_LITERAL and secret not in self._secrets:
            self._secrets[secret] = len(self._secrets) + 1

    def learn_headers(self, headers: dict[str, str]) -> None:
        for name, value in headers.items():
            lowered = name.lower()
            if lowered in PLAIN_SIGNING:
                continue
            if lowered in ("cookie", "set-cookie"):
                for part in value.split(";"):
                    self.add(part.partition("=")[2].strip())
            elif lowered == "authorization":
                self.add(value.split(" ", 1)[-1].strip())
                self.add(value.rpartition(":")[2].strip())  # OSS <id>:<signature>
                self.add(value.split(" ", 1)[-1].partition(":")[0].strip())
            if secret_header(lowered):
                self.add(value.strip())

    def learn_url(self, url: str) -> None:
        query = urllib.parse.urlsplit(url).query
        for name, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
            if SENSITIVE_NAME.search(name) or name.lower().startswith("x-oss-"):
                self.add(value)

    def learn_body(self, body: bytes) -> None:
        """Secrets in a JSON body, in each SSE `data:` frame, and in the URLs they carry."""
        text = body.decode("utf-8", "replace")
        for found in _json_documents(text):
            self._walk(found)
        for url in URL.findall(text):
            self.learn_url(url)

    def _walk(self, value: Any) -> None:
        if isinstance(value, dict):
            pair_name = value.get("key")
            if isinstance(pair_name, str) and secret_header(pair_name):
                self._take(value.get("value"))
            pair = "value" in value  # {key, value}: `key` names the header, it is no secret
            for key, item in value.items():
                if pair and key == "key":
                    continue
                if SENSITIVE_NAME.search(str(key)) and str(key).lower() not in PLAIN_SIGNING:
                    self._take(item)
                self._walk(item)
        elif isinstance(value, list):
            for item in value:
                self._walk(item)
        elif isinstance(value, str) and value.startswith(("http://", "https://")):
            self.learn_url(value)

    def _take(self, value: Any) -> None:
        if isinstance(value, str):
            self.add(value)
        elif isinstance(value, list):
            for item in value:
                self._take(item)

    def _forms(self) -> Iterator[tuple[str, str]]:
        """(form, placeholder) for every secret: longest first, plain, URL- and JSON-encoded."""
        for secret, number in sorted(self._secrets.items(), key=lambda item: -len(item[0])):
            placeholder = f"<redacted-{number}>"
            yield secret, placeholder
            for form in (
                urllib.parse.quote(secret, safe=""),
                urllib.parse.quote_plus(secret),
                json.dumps(secret)[1:-1],
            ):
                if form != secret:
                    yield form, placeholder

    def text(self, text: str) -> str:
        for form, placeholder in self._forms():
            text = text.replace(form, placeholder)
        text = JWT.sub(PLACEHOLDER, text)
        text = EMAIL.sub(PLACEHOLDER, text)
        return TICKET_COOKIE.sub(lambda m: m.group(1) + PLACEHOLDER, text)

    def data(self, data: bytes) -> bytes:
        """A body with its secrets replaced (binary bodies: byte-wise, text untouched)."""
        try:
            return self.text(data.decode("utf-8")).encode("utf-8")
        except UnicodeDecodeError:
            for form, placeholder in self._forms():
                data = data.replace(form.encode(), placeholder.encode())
            return data

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        """Header values with secrets replaced; every secret-bearing header wholly."""
        return {
            name: (PLACEHOLDER if _hidden(name) and value else self.text(value))
            for name, value in headers.items()
        }

    def chunks(self, chunks: list[bytes]) -> list[bytes]:
        """Chunks scrubbed one by one when that equals scrubbing the whole body; else one chunk
        (a secret split across a chunk boundary must not survive)."""
        whole = self.data(b"".join(chunks))
        parts = [self.data(chunk) for chunk in chunks]
        return parts if b"".join(parts) == whole else [whole]


def _hidden(name: str) -> bool:
    return secret_header(name) and name.lower() not in PLAIN_SIGNING


def _json_documents(text: str) -> Iterator[Any]:
    """The whole body as JSON, else each SSE `data:` line (or bare line) that is JSON."""
    try:
        yield json.loads(text)
        return
    except (ValueError, RecursionError):
        pass
    for line in text.splitlines():
        candidate = line.removeprefix("data:").strip()
        if candidate.startswith(("{", "[")):
            try:
                yield json.loads(candidate)
            except (ValueError, RecursionError):
                continue
