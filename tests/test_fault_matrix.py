"""The fault matrix: every upstream scenario of protocol §7 that applies to cn and intl, through
every client dialect (OpenAI chat, Responses, Anthropic, Gemini), streamed and whole.

Each case checks four things: what the client sees (the answer, or the right status before the
first byte, or the right in-band error and the dialect's terminator after it); that nothing
leaked (no request or stream still open on the fake upstream, no lease held in the pool, every
upstream session created was deleted, never an empty delete); how many chat requests reached
the upstream (fail over before the first byte, never after); and the state each of the backend's
two pool accounts is left in, read back from the admin API.

Servers: one pool-mode server per backend and profile, two accounts each, shared by the module;
the fake upstream and the server's store (health, leases, pauses) are reset before every case.
`conversation_ttl=0`, so every answered session is deleted at once and leftovers show as leaks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from dialect_probe import KINDS, PROBES, Probe, Reply
from fault_checks import (
    ADMIN_KEY,
    Early,
    Expect,
    InBand,
    Ok,
    accounts,
    check_accounts,
    check_nothing_leaked,
    check_reply,
)
from qwen_free_api.app import create_app
from qwen_free_api.testing import CANNED_REFUSAL, FakeUpstream, ServerThread
from qwen_free_api.testing import Script as S

from support import CN_TICKET, INTL_JWT, clear_state, make_jwt, settings_for

Backend = Literal["cn", "intl"]

# --- the fake's scripts ------------------------------------------------------------------------

ANSWER = "The quick brown fox jumps over the lazy dog."
CJK = "你好，世界！这是一个测试回答。"
THOUGHT = "Let me think about the fox first."
PARTIAL = "partial answer here"  # piece 3: two answer frames are "partia"


def err(name: str, times: int = 1) -> tuple[S, ...]:
    """The named error instead of any answer, for the next `times` chat requests."""
    return (S(error=name),) * times


def once(name: str) -> tuple[S, ...]:
    """The named error for the next chat request, then the answer (the account failed over to)."""
    return (S(error=name), S(answer=ANSWER))


def mid(name: str) -> tuple[S, ...]:
    """Two answer frames, then the named error (or the moderation stop)."""
    if name == "moderation":
        return (S(answer=PARTIAL, moderation=True, error_after=2),)
    return (S(answer=PARTIAL, error=name, error_after=2),)


def say(**fields: Any) -> tuple[S, ...]:
    return (S(answer=fields.pop("answer", ANSWER), **fields),)


# --- the matrix ----------------------------------------------------------------------------------
# §7: "N" = row N of the scenario table at the end of protocol §7; "iN" = item N of the list above
# it (transport edge cases, error frames) for faults the table names only in general.
# fake: the scripts the fake plays to the next chat requests (say = an answer, err = a named error
# instead of any answer, mid = two answer frames then the error).
# expect: ok = the whole answer (text, finish, reasoning, usage); early = status before the first
# byte (kind, Retry-After); band = after it: the partial text, then the in-band error (whole
# responses get that status).
# accounts: the two accounts' states afterwards; "cooling:N" = cooling about N s (transient: this
# module's 30 s; quota: the upstream's reset, num = 3 h; rate limit: 60 s).
# tries: chat requests that reached the fake (2 = failed over, or re-signed once; None: 1 or 2).
# Failing over: a refused account, quota, WAF, and one request's failure (5xx, error frame);
# not timeouts, moderation or protocol errors ("-twice": both accounts fail, the error shows).

LIVE = ("live", "live")
COOL = ("cooling:30", "live")
PAUSED = ("paused", "paused")
DISABLED = ("disabled", "disabled")
QUOTA = ("cooling:10800", "live")
QUOTA2 = ("cooling:10800", "cooling:10800")
RATE = ("cooling:60", "live")
RATE2 = ("cooling:60", "cooling:60")
COOL2 = ("cooling:30", "cooling:30")


def ok(text: str = ANSWER, finish: str = "stop", **more: Any) -> Ok:
    return Ok(text, finish, **more)


early = Early
band = InBand


@dataclass(frozen=True)
class Case:
    id: str
    spec: str
    backend: Backend
    fake: tuple[S, ...]
    expect: Expect
    accounts: tuple[str, str]
    tries: int | None
    profile: str = "main"  # server settings, see PROFILES
    thinking: bool = False  # ask for reasoning (Gemini shows it only when asked)
    hold: bool = False  # the fake holds its answer until the client saw a keep-alive
    sign_mode: str = "off"
    extra: dict[str, dict[str, Any]] | None = None  # body fields per dialect; others: n/a


C = Case
UNKNOWN = {
    "openai": {"conversation_id": "chatcmpl-cn.00000000000000000000000000000000"},
    "responses": {"previous_response_id": "resp_cn.00000000000000000000000000000000"},
}
HINTS = [{"title": "Fox facts", "url": "https://qwen.example/fox"}]
SIGN_RETRY = (S(error="sign_hard"), S(answer=ANSWER))
SOFT_RETRY = (S(error="sign_soft"), S(answer=ANSWER))
FAILOVER = (S(error="quota"), S(answer=ANSWER))
SUMMARY = say(reasoning=THOUGHT, reasoning_format="summary")

# fmt: off
CASES = [
    # id               §7      where   fake
    #   expect                                   accounts tries (options)
    C("cumulative-dups",  "1",    "cn",   say(duplicates=True),
      ok(),                                      LIVE,     1),
    C("incremental-done", "2",    "intl", say(done_marker=True),
      ok(),                                      LIVE,     1),
    C("deep-think",       "3,11", "cn",   say(reasoning=THOUGHT),
      ok(reasoning=THOUGHT),                     LIVE,     1, thinking=True),
    C("think-summary",    "13",   "intl", SUMMARY,
      ok(reasoning=THOUGHT),                     LIVE,     1, thinking=True),
    C("split-utf8",       "4",    "cn",   say(answer=CJK, split_multibyte=True),
      ok(CJK),                                   LIVE,     1),
    C("one-byte-writes",  "4",    "intl", say(answer=CJK, chunk_bytes=1),
      ok(CJK),                                   LIVE,     1),
    C("heartbeats",       "5",    "cn",   say(heartbeats=True),
      ok(),                                      LIVE,     1),
    C("keepalives",       "5",    "intl", say(heartbeats=True),
      ok(),                                      LIVE,     1),
    C("not-login",        "6",    "cn",   err("not_login", 2),
      early(401, "credential_rejected"),         DISABLED, 2),
    C("moderation",       "7,31", "cn",   mid("moderation"),
      ok("partia", "content_filter"),            LIVE,     1),
    C("unknown-id-cn",    "8",    "cn",   (),
      early(400, "invalid_request"),             LIVE,     0, extra=UNKNOWN),
    C("unknown-id-intl",  "8",    "intl", (),
      early(400, "invalid_request"),             LIVE,     0, extra=UNKNOWN),
    C("progress-sources", "10",   "cn",   say(search_results=HINTS),
      ok(),                                      LIVE,     1),
    C("sign-soft-mid",    "12",   "cn",   mid("sign_soft"),
      band(502, "signing", "partia"),            COOL,     1),
    C("quota-first",      "14",   "intl", err("quota", 2),
      early(429, "quota", "10800"),              QUOTA2,   2),
    C("quota-failover",   "14",   "intl", FAILOVER,
      ok(),                                      QUOTA,    2),
    C("quota-mid",        "15",   "intl", mid("quota"),
      band(429, "quota", "partia", "10800"),     QUOTA,    1),
    C("waf-ret",          "16",   "intl", err("waf"),
      early(503, "blocked", "60"),               PAUSED,   1),
    C("captcha-ret",      "16",   "intl", err("captcha"),
      early(503, "blocked", "60"),               PAUSED,   1),
    C("http-401",         "17",   "intl", err("http_401", 2),
      early(401, "credential_rejected"),         DISABLED, 2),
    C("slow-start-cn",    "18",   "cn",   say(hold_after=0),
      ok(),                                      LIVE,     1, profile="slow", hold=True),
    C("slow-start-intl",  "18",   "intl", say(hold_after=0),
      ok(),                                      LIVE,     1, profile="slow", hold=True),
    C("eof-early-cn",     "19",   "cn",   say(close_early=True),
      band(502, "protocol", ANSWER),             COOL,     1),
    C("eof-early-intl",   "19",   "intl", say(close_early=True),
      band(502, "protocol", ANSWER),             COOL,     1),
    C("sign-hard-ok",     "24,25","cn",   say(),
      ok(),                                      LIVE,     None, sign_mode="hard"),
    C("sign-hard-retried","26",   "cn",   SIGN_RETRY,
      ok(),                                      LIVE,     2),
    C("sign-soft-retried","26",   "cn",   SOFT_RETRY,
      ok(),                                      LIVE,     2),
    C("sign-hard-twice",  "26",   "cn",   err("sign_hard", 2),
      early(502, "signing"),                     COOL,     2),
    C("canned-refusal",   "27",   "cn",   err("canned"),
      early(502, "signing"),                     COOL,     1),
    C("usage-cn",         "30",   "cn",   say(usage_numbers=(123, 45)),
      ok(usage=(123, 45)),                       LIVE,     1),
    C("usage-intl",       "30",   "intl", say(usage_numbers=(123, 45)),
      ok(usage=(123, 45)),                       LIVE,     1),
    C("no-event-lines",   "32",   "cn",   say(no_event_lines=True),
      ok(),                                      LIVE,     1),
    C("complete-json",    "32",   "cn",   say(complete_json=True),
      ok(),                                      LIVE,     1),
    C("crlf-cn",          "i8",   "cn",   say(crlf=True),
      ok(),                                      LIVE,     1),
    C("crlf-intl",        "i8",   "intl", say(crlf=True, no_phase=True),
      ok(),                                      LIVE,     1),
    C("stall-cn",         "i8",   "cn",   say(answer=PARTIAL, stall_after=1),
      band(504, "timeout", "par"),               COOL,     1, profile="stall"),
    C("stall-intl",       "i8",   "intl", say(answer=PARTIAL, stall_after=1),
      band(504, "timeout", "par"),               COOL,     1, profile="stall"),
    C("waf-html-cn",      "i8",   "cn",   err("waf_html"),
      early(503, "blocked", "60"),               PAUSED,   1),
    C("waf-json-cn",      "i8",   "cn",   err("waf_json"),
      early(503, "blocked", "60"),               PAUSED,   1),
    C("waf-html-intl",    "i8",   "intl", err("html_waf"),
      early(503, "blocked", "60"),               PAUSED,   1),
    C("empty-body-cn",    "i8",   "cn",   err("empty"),
      early(502, "protocol"),                    COOL,     1),
    C("bad-request",      "i8",   "intl", once("bad_request"),
      ok(),                                      COOL,     2),
    C("bad-request-twice", "i8",   "intl", err("bad_request", 2),
      early(502, "upstream"),                    COOL2,    2),
    C("http-429",         "i4",   "intl", err("http_429", 2),
      early(429, "rate_limited", "60"),          RATE2,    2),
    C("http-500-cn",      "i8",   "cn",   once("http_500"),
      ok(),                                      COOL,     2),
    C("http-500-cn-twice", "i8",   "cn",   err("http_500", 2),
      early(502, "upstream"),                    COOL2,    2),
    C("http-500-intl",    "i8",   "intl", once("http_500"),
      ok(),                                      COOL,     2),
    C("http-500-intl-twice", "i8",   "intl", err("http_500", 2),
      early(502, "upstream"),                    COOL2,    2),
    C("http-502-cn",      "i8",   "cn",   once("http_502"),
      ok(),                                      COOL,     2),
    C("http-502-cn-twice", "i8",   "cn",   err("http_502", 2),
      early(502, "upstream"),                    COOL2,    2),
    C("http-503-cn",      "i8",   "cn",   once("http_503"),
      ok(),                                      COOL,     2),
    C("http-503-cn-twice", "i8",   "cn",   err("http_503", 2),
      early(503, "blocked", "30"),               COOL2,    2),
    C("http-503-intl",    "i8",   "intl", once("http_503"),
      ok(),                                      COOL,     2),
    C("http-503-intl-twice", "i8",   "intl", err("http_503", 2),
      early(503, "blocked", "30"),               COOL2,    2),
    C("http-504-cn",      "i8",   "cn",   err("http_504_html"),
      early(504, "timeout"),                     COOL,     1),
    C("http-504-intl",    "i8",   "intl", err("http_504_html"),
      early(504, "timeout"),                     COOL,     1),
    C("error-frame",      "i9",   "cn",   once("error_frame"),
      ok(),                                      COOL,     2),
    C("error-frame-twice", "i9",   "cn",   err("error_frame", 2),
      early(502, "upstream"),                    COOL2,    2),
    C("error-frame-mid",  "i9",   "cn",   mid("error_frame"),
      band(502, "upstream", "partia"),           COOL,     1),
    C("too-many",         "i9",   "intl", err("too_many_requests", 2),
      early(429, "rate_limited", "60"),          RATE2,    2),
    C("too-many-mid",     "i9",   "intl", mid("too_many_requests"),
      band(429, "rate_limited", "partia", "60"), RATE,     1),
    C("context-first",    "i9",   "intl", err("context_length"),
      early(400, "context_length"),              LIVE,     1),
    C("context-mid",      "i9",   "intl", mid("context_length"),
      band(400, "context_length", "partia"),     LIVE,     1),
    C("waf-mid",          "i9",   "intl", mid("waf"),
      band(503, "blocked", "partia", "60"),      PAUSED,   1),
]
# fmt: on

# §7 rows not in CASES, and why (the dialect A rows 1-8 map to the cn/intl cases marked so).
NOT_APPLICABLE = {
    "9": "session cleanup: checked after every case (created == deleted, no empty id)",
    "20": "tool-call emulation is a success path, not a fault: test_toolcalls.py and the tool "
    "tests of every dialect module",
    "21": "how a tool result turn is folded into the prompt: test_toolcalls.py",
    "22": "image generation has its own endpoint: test_images.py, test_cn_images.py",
    "23": "dialect A uploads are not built; cn/intl uploads: test_cn_uploads.py, "
    "test_intl_uploads.py",
    "28": "continuation success path: test_conversations.py (unknown ids are row 8 here)",
    "29": "cn image input: test_cn_uploads.py, test_media_e2e.py",
}
# Row 8 runs on OpenAI chat and Responses only: Anthropic and Gemini have no conversation id.

PROFILES: dict[str, dict[str, Any]] = {
    "main": {},
    # Headers and keep-alives go out almost at once while the upstream says nothing.
    "slow": {"first_event_timeout": 0.05, "keepalive_interval": 0.05},
    # A silent upstream times out after a second.
    "stall": {"read_timeout": 1.0},
}
CLIENT_KEY = "sk-matrix"
CREDENTIALS: dict[Backend, list[str]] = {
    "cn": [CN_TICKET, "tk-good-second-abcdefghijklmnopqrstuvwxyz0123"],
    "intl": [INTL_JWT, make_jwt({"id": "user-2", "exp": int(time.time()) + 86400})],
}


def _params() -> list[Any]:
    params = []
    for case in CASES:
        for name in PROBES:
            if case.extra is not None and name not in case.extra:
                continue
            for stream in (False, True):
                mode = "stream" if stream else "whole"
                params.append(pytest.param(case, name, stream, id=f"{case.id}-{name}-{mode}"))
    return params


# --- servers -----------------------------------------------------------------------------------

Servers = Callable[[Backend, str], tuple[str, Path]]


@pytest.fixture(scope="module")
def servers(
    fake_server: tuple[FakeUpstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Servers]:
    """A pool-mode server per (backend, profile), started on first use, stopped at the end."""
    _, fake_url = fake_server
    started: dict[tuple[Backend, str], tuple[ServerThread, Path]] = {}

    def get(backend: Backend, profile: str) -> tuple[str, Path]:
        if (backend, profile) not in started:
            state = tmp_path_factory.mktemp("matrix") / "state.db"
            settings = settings_for(
                fake_url,
                state,
                tokens=CREDENTIALS[backend],
                api_keys=[CLIENT_KEY],
                admin_key=ADMIN_KEY,
                conversation_ttl=0,
                transient_cooldown=30.0,
                cn_canned_answers=[CANNED_REFUSAL],
                **PROFILES[profile],
            )
            started[backend, profile] = (ServerThread(create_app(settings)).start(), state)
        thread, state = started[backend, profile]
        return thread.url, state

    yield get
    for thread, _ in started.values():
        thread.stop()


# --- the test ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("case", "dialect", "stream"), _params())
async def test_fault(
    case: Case, dialect: str, stream: bool, fake: FakeUpstream, servers: Servers
) -> None:
    url, state = servers(case.backend, case.profile)
    clear_state(state)
    fake.sign_mode = case.sign_mode
    for script in case.fake:
        fake.enqueue(case.backend, dataclasses.replace(script))
    probe = PROBES[dialect]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        reply = await _ask(client, probe, case, stream, fake)
        check_reply(probe, case.expect, reply, stream=stream, hold=case.hold)
        await check_nothing_leaked(client, fake, case.backend)
        views = await accounts(client)
    if case.tries is not None:
        assert len(fake.chat_requests(case.backend)) == case.tries
    check_accounts(views, case.accounts)


async def _ask(
    client: httpx.AsyncClient, probe: Probe, case: Case, stream: bool, fake: FakeUpstream
) -> Reply:
    path, body, headers = probe.request(
        CLIENT_KEY, "tell me", stream=stream, thinking=case.thinking
    )
    body.update((case.extra or {}).get(probe.name, {}))
    if not stream:
        task = asyncio.ensure_future(client.post(path, json=body, headers=headers))
        if case.hold:  # the upstream holds its answer: let it go once it is held
            await fake.wait_for(lambda: fake.held_streams == 1)
            fake.release()
        response = await task
        return probe.parse(
            response.status_code, dict(response.headers), response.text, stream=False
        )
    async with client.stream("POST", path, json=body, headers=headers) as response:
        chunks = response.aiter_bytes()
        raw = b""
        if case.hold:  # something (a keep-alive) reaches the client while the upstream is held
            raw = await anext(chunks)
            assert fake.held_streams == 1, "the answer began before the upstream was released"
            fake.release()
        async for chunk in chunks:
            raw += chunk
    return probe.parse(response.status_code, dict(response.headers), raw.decode(), stream=True)


def test_every_row_of_the_table_is_a_case_or_says_why_not() -> None:
    rows = {int(r) for case in CASES for r in case.spec.split(",") if r.isdigit()}
    assert rows.isdisjoint(int(r) for r in NOT_APPLICABLE)
    assert rows | {int(r) for r in NOT_APPLICABLE} == set(range(1, 33))
    assert len({case.id for case in CASES}) == len(CASES)
    for case in CASES:
        assert isinstance(case.expect, Ok) or case.expect.kind in KINDS, case.id
