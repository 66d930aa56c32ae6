"""The one seam to the upstream HTTP client (curl_cffi, for a browser TLS fingerprint).

curl_cffi was chosen by measurement against aiohttp and httpx (docs/performance.md) and because
the Qwen web gateways judge clients by their TLS fingerprint. Everything upstream-specific stays
out of here; transport failures become typed gateway errors at this boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from curl_cffi import CurlHttpVersion, CurlOpt
from curl_cffi import requests as curl

from qwen_free_api.errors import UpstreamError, UpstreamTimeout
from qwen_free_api.settings import Settings
from qwen_free_api.upstreams.watchdog import Watchdog


class Tap(Protocol):
    """One exchange being recorded: its response head, then each body chunk as it arrives."""

    def response(self, status: int, headers: Mapping[str, str]) -> None: ...

    def chunk(self, data: bytes) -> None: ...

    def failed(self, reason: str) -> None: ...


class Recorder(Protocol):
    """Sees every upstream exchange (the doctor's `--record`); unset on the serving path."""

    def begin(
        self, method: str, url: str, headers: Mapping[str, str], body: bytes | None
    ) -> Tap: ...


@dataclass(slots=True)
class Reply:
    """An upstream response whose body may still be arriving."""

    status: int
    headers: Mapping[str, str]
    _response: Any
    _tap: Tap | None = None
    _silence: float | None = None  # most seconds between two chunks (curl's own check is late)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").lower()

    async def chunks(self) -> AsyncIterator[bytes]:
        pieces = self._response.aiter_content()
        watch = None if self._silence is None else Watchdog(self._silence)
        try:
            while True:
                if watch is not None:
                    watch.arm()
                try:
                    chunk = await anext(pieces)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if watch is not None and watch.claim():
                        raise UpstreamTimeout("the upstream went silent mid-answer") from None
                    raise
                if watch is not None:
                    watch.disarm()
                if self._tap is not None:
                    self._tap.chunk(chunk)
                yield chunk
        except curl.exceptions.Timeout as error:
            raise UpstreamTimeout("the upstream went silent mid-answer") from error
        except curl.exceptions.RequestException as error:
            raise UpstreamError(f"the upstream connection failed: {_reason(error)}") from error
        finally:
            if watch is not None:
                watch.close()

    async def read(self, limit: int = 1 << 20) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(parts)


@dataclass(frozen=True, slots=True)
class Response:
    """A complete upstream response."""

    status: int
    headers: Mapping[str, str]
    body: bytes


class Http:
    """Upstream HTTP calls over one shared curl_cffi session."""

    def __init__(self, settings: Settings, recorder: Recorder | None = None) -> None:
        self._recorder = recorder
        # curl's stream timeout (low-speed check over connect + read seconds) fires many seconds
        # late; Reply.chunks enforces read_timeout itself.
        self._read_timeout = settings.read_timeout
        self._session: Any = curl.AsyncSession(
            impersonate=settings.impersonate,
            proxy=settings.proxy,
            max_clients=settings.upstream_max_connections,
            timeout=(settings.connect_timeout, settings.read_timeout),
            allow_redirects=False,
            # HTTP/2 over TLS as Chrome does, plain HTTP/1.1 without TLS (no h2c upgrade,
            # which many servers, the fake upstream's included, do not speak).
            curl_options={CurlOpt.HTTP_VERSION: CurlHttpVersion.V2TLS},
        )

    async def close(self) -> None:
        await self._session.close()

    @contextlib.asynccontextmanager
    async def stream(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> AsyncIterator[Reply]:
        """Open a streaming request; leaving the block closes the upstream connection."""
        tap = None if self._recorder is None else self._recorder.begin(method, url, headers, body)
        try:
            response = await self._session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                stream=True,
            )
        except curl.exceptions.RequestException as error:
            if tap is not None:
                tap.failed(_reason(error))
            if isinstance(error, curl.exceptions.Timeout):
                raise UpstreamTimeout(f"the upstream did not answer in time ({url})") from error
            raise UpstreamError(f"could not reach the upstream: {_reason(error)}") from error
        reply = Reply(
            response.status_code, _lower(response.headers), response, tap, self._read_timeout
        )
        if tap is not None:
            tap.response(reply.status, reply.headers)
        try:
            yield reply
        finally:
            await self._abort(response)

    async def request(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None = None
    ) -> Response:
        async with self.stream(method, url, headers=headers, body=body) as reply:
            data = await reply.read(limit=8 << 20)
            return Response(reply.status, reply.headers, data)

    async def _abort(self, response: Any) -> None:
        """Stop a transfer now, even one whose upstream has gone silent."""
        task = response.astream_task
        if task is None or task.done():
            return
        if response.quit_now is not None:
            response.quit_now.set()  # refuses further data
        with contextlib.suppress(Exception):
            self._session.acurl.remove_handle(response.curl)  # drops the connection now
        await asyncio.wait({task})


def _lower(headers: Any) -> dict[str, str]:
    return {str(key).lower(): str(value) for key, value in headers.items()}


def _reason(error: Exception) -> str:
    text = str(error).split(". See ", 1)[0]
    return text[:200]
