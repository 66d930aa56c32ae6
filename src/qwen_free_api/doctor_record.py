"""Recording raw upstream exchanges (the doctor's `--record DIR`), with secrets replaced.

`Recording` is the recorder `upstreams.http.Http` accepts: it keeps every exchange in memory
as it happens (request, response head, body chunks as they arrived). `save` writes them, one
JSON file each (`0001.json`, …), after `doctor_scrub.Scrubber` has learnt the secrets of the
whole recording, so a secret first seen late is also replaced where it appeared early. The
fake upstream replays such a directory (`testing/replay.py`, `load_exchanges`).
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qwen_free_api.doctor_scrub import Scrubber

VERSION = 1


@dataclass(slots=True)
class Exchange:
    """One upstream request and what came back (a `Tap` for `Http`)."""

    method: str
    url: str
    request_headers: dict[str, str]
    request_body: bytes
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    chunks: list[bytes] = field(default_factory=list)
    error: str | None = None

    def response(self, status: int, headers: Mapping[str, str]) -> None:
        self.status = status
        self.response_headers = dict(headers)

    def chunk(self, data: bytes) -> None:
        self.chunks.append(bytes(data))

    def failed(self, reason: str) -> None:
        self.error = reason

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.url).path or "/"


class Recording:
    """Every exchange of one `Http`, in the order they began (a `Recorder`)."""

    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def begin(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Exchange:
        exchange = Exchange(method.upper(), url, dict(headers), body or b"")
        self.exchanges.append(exchange)
        return exchange

    def scrubber(self, secrets: Iterable[str]) -> Scrubber:
        """A scrubber that knows `secrets` and every secret this recording carries."""
        scrubber = Scrubber(secrets)
        for exchange in self.exchanges:
            scrubber.learn_url(exchange.url)
            scrubber.learn_headers(exchange.request_headers)
            scrubber.learn_headers(exchange.response_headers)
            scrubber.learn_body(exchange.request_body)
            scrubber.learn_body(exchange.body)
        return scrubber

    def save(self, directory: Path, scrubber: Scrubber) -> list[Path]:
        """Write every exchange, scrubbed, as `DIR/NNNN.json`; the files written."""
        directory.mkdir(parents=True, exist_ok=True)
        written: list[Path] = []
        for number, exchange in enumerate(self.exchanges, start=1):
            path = directory / f"{number:04d}.json"
            document = scrubbed(exchange, number, scrubber)
            path.write_text(json.dumps(document, ensure_ascii=False, indent=1), encoding="utf-8")
            written.append(path)
        return written


def scrubbed(exchange: Exchange, number: int, scrubber: Scrubber) -> dict[str, Any]:
    """The file form of one exchange, every secret replaced."""
    response = None
    if exchange.status is not None:
        response = {
            "status": exchange.status,
            "headers": scrubber.headers(exchange.response_headers),
            "chunks": [_encode(chunk) for chunk in scrubber.chunks(exchange.chunks)],
        }
    return {
        "version": VERSION,
        "seq": number,
        "method": exchange.method,
        "url": scrubber.text(exchange.url),
        "request": {
            "headers": scrubber.headers(exchange.request_headers),
            "body": _encode(scrubber.data(exchange.request_body)),
        },
        "response": response,
        "error": scrubber.text(exchange.error) if exchange.error else None,
    }


@dataclass(frozen=True, slots=True)
class Recorded:
    """One exchange as read back from a recording (for replay)."""

    method: str
    path: str
    status: int | None
    headers: dict[str, str]
    chunks: list[bytes]


def load_exchanges(directory: Path) -> list[Recorded]:
    """The exchanges of a recording directory, in order."""
    found: list[Recorded] = []
    for path in sorted(directory.glob("[0-9][0-9][0-9][0-9].json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        response = document.get("response") or {}
        found.append(
            Recorded(
                method=str(document["method"]).upper(),
                path=urllib.parse.urlsplit(str(document["url"])).path or "/",
                status=response.get("status"),
                headers={str(k): str(v) for k, v in (response.get("headers") or {}).items()},
                chunks=[_decode(chunk) for chunk in response.get("chunks") or []],
            )
        )
    return found


def _encode(data: bytes) -> str | dict[str, str]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def _decode(value: Any) -> bytes:
    if isinstance(value, dict):
        return base64.b64decode(str(value.get("base64", "")))
    return str(value).encode("utf-8")
