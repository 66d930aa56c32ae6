"""The soak's traffic: what each request asks for (client dialect and upstream behaviour), how
it is sent, and how its ending is judged well-formed.

Every request carries a marker naming its kind; the fake answers any prompt with that marker by
the kind's script (`FakeUpstream.script_for_prompt`), so each request's expected ending is known
however the 200 concurrent requests interleave.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio

from dialect_probe import PROBES
from qwen_free_api.testing import FakeUpstream, Script

SLOW = Script(answer="slow " * 16, piece=4, pace=0.1)  # 20 frames, 0.1 s apart
# kind -> (cn script, intl script); None: the default echo answer
SCRIPTS: dict[str, tuple[Script, Script] | None] = {
    "normal": None,
    "slow": (SLOW, SLOW),
    "disconnect": (SLOW, SLOW),  # the client leaves after the first words
    "impatient": (Script(first_byte_delay=1.0), Script(first_byte_delay=1.0)),  # leaves first
    "error_mid": (
        Script(error="error_frame", error_after=2),
        Script(error="bad_request", error_after=2),
    ),
    "http_500": (Script(error="http_500"), Script(error="http_500")),
    "http_502": (Script(error="http_502"), Script(error="http_502")),
    "eof": (Script(close_early=True), Script(close_early=True)),
    "stall": (Script(stall_after=2), Script(stall_after=2)),  # silent past QFA_READ_TIMEOUT
}
# One cycle of 40 requests: mostly answers, a fifth slow, the rest disconnects and faults.
CYCLE = (
    ["normal"] * 16 + ["slow"] * 8 + ["disconnect"] * 5 + ["impatient"] * 2 + ["error_mid"] * 3
    + ["http_500", "http_502"] + ["eof"] * 2 + ["stall"]
)  # fmt: skip
DIALECTS = ("openai", "openai", "openai", "openai", "anthropic", "gemini", "responses")
IMPATIENCE = 0.3  # seconds an impatient client waits for the response headers, then leaves
# How each kind may end: complete answer, in-band error + terminator, HTTP error before the
# first byte, or the client's own leaving.
ALLOWED = {
    "normal": {"complete"},
    "slow": {"complete"},
    "disconnect": {"left"},
    "impatient": {"left", "complete"},  # the answer may beat the client's patience
    "error_mid": {"stream_error"},
    "http_500": {"http_error"},
    "http_502": {"http_error"},
    "eof": {"stream_error", "complete"},  # protocol matrix #19: finish or error, terminated
    "stall": {"stream_error"},
}


def register(fake: FakeUpstream) -> None:
    for kind, scripts in SCRIPTS.items():
        if scripts is not None:
            fake.script_for_prompt(marker(kind), scripts[0], ("cn",))
            fake.script_for_prompt(marker(kind), scripts[1], ("intl",))


def marker(kind: str) -> str:
    return f"[soak:{kind}]"


@dataclass
class Ask:
    index: int
    kind: str
    dialect: str

    @property
    def prompt(self) -> str:
        return f"{marker(self.kind)} request {self.index}"


def ask_of(index: int) -> Ask:
    return Ask(index, CYCLE[index % len(CYCLE)], DIALECTS[index % len(DIALECTS)])


def request_of(ask: Ask, key: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(path, body, headers) of a streamed request in the ask's client dialect, built as the
    fault matrix builds them."""
    built: tuple[str, dict[str, Any], dict[str, str]]
    built = PROBES[ask.dialect].request(key, ask.prompt, stream=True, thinking=False)
    return built


def sse_events(raw: str) -> list[tuple[str, str]]:
    """(event name, data) of each SSE block; comment-only blocks (keep-alives) are dropped."""
    events = []
    for block in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def judge_stream(dialect: str, raw: str) -> tuple[str, str]:
    """(outcome, text) of a 200 event stream: `complete`, `stream_error` or `malformed: …`."""
    events = sse_events(raw)
    if not events:
        return "malformed: no events", ""
    if dialect == "openai":
        return _judge_openai(events)
    payloads = [json.loads(data) for _, data in events]
    last = payloads[-1]
    if dialect == "anthropic":
        deltas = [p["delta"] for p in payloads if p.get("type") == "content_block_delta"]
        text = "".join(d.get("text", "") for d in deltas)
        ends = {"message_stop": "complete", "error": "stream_error"}
        return ends.get(last.get("type"), f"malformed: ends with {last.get('type')}"), text
    if dialect == "gemini":
        candidates = [p["candidates"][0] for p in payloads if "candidates" in p]
        parts = [part for c in candidates for part in c.get("content", {}).get("parts", [])]
        text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        if "error" in last:
            return "stream_error", text
        done = "candidates" in last and last["candidates"][0].get("finishReason")
        return ("complete" if done else "malformed: no finishReason at the end"), text
    text = "".join(
        p.get("delta", "") for p in payloads if p["type"] == "response.output_text.delta"
    )
    ends = {"response.completed": "complete", "response.failed": "stream_error"}
    ends["response.incomplete"] = "complete"
    ends["error"] = "stream_error"
    return ends.get(last["type"], f"malformed: ends with {last['type']}"), text


def _judge_openai(events: list[tuple[str, str]]) -> tuple[str, str]:
    datas = [data for _, data in events]
    if datas[-1] != "[DONE]" or datas.count("[DONE]") != 1:
        return "malformed: no single [DONE] at the end", ""
    chunks = [json.loads(data) for data in datas[:-1]]
    choices = [c["choices"][0] for c in chunks if c.get("choices")]
    text = "".join(c.get("delta", {}).get("content") or "" for c in choices)
    if chunks and "error" in chunks[-1]:
        return "stream_error", text
    if any(c.get("finish_reason") for c in choices):
        return "complete", text
    return "malformed: neither finish_reason nor error", text


def judge_error(dialect: str, status: int, raw: str) -> str:
    """`http_error` for a proper JSON error before the first byte, else `malformed: …`."""
    try:
        body = json.loads(raw)
    except ValueError:
        return f"malformed: HTTP {status} without a JSON body"
    error = body.get("error") if isinstance(body, dict) else None
    if status >= 400 and isinstance(error, dict) and error.get("message"):
        return "http_error"
    return f"malformed: HTTP {status} {raw[:200]}"


async def one(client: aiohttp.ClientSession, ask: Ask, key: str) -> tuple[str, str]:
    """Send one request and return (outcome, detail)."""
    path, body, headers = request_of(ask, key)
    if ask.kind == "impatient":
        with anyio.move_on_after(IMPATIENCE):  # the client's own patience, then it leaves
            return await _exchange(client, ask, path, body, headers)
        return "left", "before the headers"
    return await _exchange(client, ask, path, body, headers)


async def _exchange(
    client: aiohttp.ClientSession,
    ask: Ask,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
) -> tuple[str, str]:
    async with client.post(path, json=body, headers=headers) as response:
        if response.status != 200:
            raw = (await response.read()).decode()
            return judge_error(ask.dialect, response.status, raw), raw[:200]
        if "text/event-stream" not in response.headers.get("content-type", ""):
            return "malformed: 200 without an event stream", ""
        if ask.kind == "disconnect":
            async for chunk in response.content.iter_any():
                if b"slow" in chunk:  # the first words arrived: leave mid-answer
                    return "left", "mid-answer"  # leaving the block closes the connection
            return "malformed: the slow answer ended before its first words", ""
        raw = (await response.read()).decode()
    outcome, text = judge_stream(ask.dialect, raw)
    if outcome == "complete" and ask.kind in ("normal", "slow"):
        expected = SLOW.answer if ask.kind == "slow" else f"Echo: {ask.prompt}"
        if text != expected:
            return f"malformed: text {text[:80]!r} is not {str(expected)[:80]!r}", raw[-300:]
    return outcome, raw[-300:]


@dataclass
class Tally:
    """Outcomes by kind, and the first few ill-formed endings with their request."""

    outcomes: Counter[tuple[str, str]]
    bad: list[str]
    peak: int = 0
    open: int = 0

    @classmethod
    def new(cls) -> Tally:
        return cls(Counter(), [])

    def add(self, ask: Ask, outcome: str, detail: str) -> None:
        self.outcomes[(ask.kind, outcome)] += 1
        if outcome not in ALLOWED[ask.kind] and len(self.bad) < 20:
            self.bad.append(f"#{ask.index} {ask.kind}/{ask.dialect}: {outcome} | {detail}")

    def total(self) -> int:
        return sum(self.outcomes.values())

    def table(self) -> str:
        rows = [f"  {kind:<11} {outcome:<13} {n}" for (kind, outcome), n in self.outcomes.items()]
        return "\n".join(sorted(rows))


async def drive(url: str, key: str, start: int, count: int, width: int) -> Tally:
    """Send requests start..start+count-1, `width` at a time; every one is judged. A client of
    its own: no kept-alive connection outlives the phase (and the server's keep-alive timeout).
    aiohttp, not httpx: httpx's pool spends O(connections) per request, and at 200 connections
    the test process, not the server, would be the bottleneck."""
    connector = aiohttp.TCPConnector(limit=width)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        return await _drive(client, key, start, count, width)


async def _drive(
    client: aiohttp.ClientSession, key: str, start: int, count: int, width: int
) -> Tally:
    tally = Tally.new()
    queue = iter(range(start, start + count))

    async def worker() -> None:
        for index in queue:
            ask = ask_of(index)
            tally.open += 1
            tally.peak = max(tally.peak, tally.open)
            try:
                outcome, detail = await one(client, ask, key)
            except (aiohttp.ClientError, TimeoutError) as error:
                outcome, detail = f"malformed: {type(error).__name__}", str(error)[:200]
            finally:
                tally.open -= 1
            tally.add(ask, outcome, detail)

    async with anyio.create_task_group() as group:
        for _ in range(width):
            group.start_soon(worker)
    return tally
