"""Bench upstream: a minimal, fast fake of the intl Qwen backend on raw asyncio streams.

Run it as its own process: `python bench/upstream.py --port 0 --frames 100 --pace-ms 0`.
It prints `READY <port>` on stdout once it listens, and serves until it is terminated.
`POST /bench/config?pace_ms=20&frames=100` changes the answers of later requests (the bench
switches pacing this way, so a peer server pointed at this port keeps its connections).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

BACKLOG = 4096
HEAD_LIMIT = 64 << 10
JSON_HEAD = (
    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
    "Content-Length: {length}\r\nConnection: keep-alive\r\n\r\n"
)
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


@dataclass(slots=True)
class Config:
    """What every completion stream looks like; `POST /bench/config` changes it between levels."""

    frames: int
    pace: float


@dataclass(frozen=True, slots=True)
class Head:
    """The parts of a request head this fake needs."""

    method: str
    target: str
    headers: dict[str, str]


def parse_head(raw: bytes) -> Head:
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Head(method, target, headers)


async def discard_body(reader: asyncio.StreamReader, head: Head) -> None:
    """Read the request body (Content-Length or chunked) and throw it away."""
    if head.headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return
    length = int(head.headers.get("content-length", "0") or "0")
    if length:
        await reader.readexactly(length)


def json_reply(status: str, payload: object) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return JSON_HEAD.format(status=status, length=len(body)).encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def answer_frame(index: int, response_id: bytes) -> bytes:
    return (
        b'data: {"choices": [{"delta": {"role": "assistant", "content": "tok%d ", '
        b'"phase": "answer", "status": "typing"}}], "response_id": "%s", '
        b'"usage": {"input_tokens": 12, "output_tokens": %d, "total_tokens": %d}}\n\n'
        % (index, response_id, index + 1, 12 + index + 1)
    )


def created_frame(chat_id: bytes, response_id: bytes) -> bytes:
    return (
        b'data: {"response.created":{"chat_id":"%s","parent_id":null,'
        b'"response_id":"%s","response_index":"0"}} \n\n' % (chat_id, response_id)
    )


def finished_frame(response_id: bytes) -> bytes:
    return (
        b'data: {"choices": [{"delta": {"content": "", "role": "assistant", '
        b'"status": "finished", "phase": "answer"}}], "response_id": "%s"}\n\n' % response_id
    )


async def stream_completion(writer: asyncio.StreamWriter, target: str, config: Config) -> None:
    """The completion stream: created, N answer frames, finished; each chunk drained alone."""
    query = parse_qs(urlsplit(target).query)
    chat_id = query.get("chat_id", [""])[0].encode()
    response_id = str(uuid.uuid4()).encode()
    frames = [created_frame(chat_id, response_id)]
    frames += [answer_frame(i, response_id) for i in range(config.frames)]
    frames.append(finished_frame(response_id))
    writer.write(STREAM_HEAD)
    for index, frame in enumerate(frames):
        if index and config.pace:
            await asyncio.sleep(config.pace)
        writer.write(chunk(frame))
        await writer.drain()
    writer.write(LAST_CHUNK)
    await writer.drain()


def configure(config: Config, target: str) -> dict[str, float]:
    """Apply `?pace_ms=…&frames=…` (either may be left out); answer the configuration now."""
    query = parse_qs(urlsplit(target).query)
    if "pace_ms" in query:
        config.pace = float(query["pace_ms"][0]) / 1000
    if "frames" in query:
        config.frames = int(query["frames"][0])
    return {"pace_ms": config.pace * 1000, "frames": config.frames}


async def answer(head: Head, writer: asyncio.StreamWriter, config: Config) -> None:
    path = urlsplit(head.target).path
    if head.method == "POST" and path == "/api/v2/chats/new":
        data = {"id": str(uuid.uuid4())}
        writer.write(json_reply("200 OK", {"success": True, "request_id": "x", "data": data}))
    elif head.method == "POST" and path == "/api/v2/chat/completions":
        await stream_completion(writer, head.target, config)
        return
    elif head.method == "DELETE" and path.startswith("/api/v2/chats/"):
        writer.write(json_reply("200 OK", {"success": True}))
    elif head.method == "POST" and path == "/bench/config":
        writer.write(json_reply("200 OK", configure(config, head.target)))
    else:
        writer.write(json_reply("404 Not Found", {"success": False, "detail": "not found"}))
    await writer.drain()


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: Config
) -> None:
    """Serve requests one after another on one keep-alive connection."""
    try:
        while True:
            head = parse_head((await reader.readuntil(b"\r\n\r\n"))[:-4])
            if head.headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await discard_body(reader, head)
            await answer(head, writer, config)
            if head.headers.get("connection", "").lower() == "close":
                break
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


async def serve(host: str, port: int, config: Config) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, config)

    server = await asyncio.start_server(
        handle, host, port, backlog=BACKLOG, limit=HEAD_LIMIT, reuse_address=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"READY {bound}\n")
    sys.stdout.flush()
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    parser.add_argument("--frames", type=int, default=100, help="answer frames per completion")
    parser.add_argument("--pace-ms", type=float, default=0.0, help="pause between frames")
    args = parser.parse_args()
    config = Config(frames=args.frames, pace=args.pace_ms / 1000)
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(args.host, args.port, config))
    else:
        uvloop.run(serve(args.host, args.port, config))


if __name__ == "__main__":
    main()
