"""The gateway: which credential answers a request, and the stream of canonical events."""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
import json
import logging
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import dataclass

from qwen_free_api.attachments import fetch_attachments
from qwen_free_api.chat import ChatRequest, Message
from qwen_free_api.conversations import Conversations
from qwen_free_api.credentials import Credential, Dialect, parse_credential
from qwen_free_api.drawing import draw_in_chat, is_drawing
from qwen_free_api.errors import (
    Blocked,
    CredentialRejected,
    GatewayError,
    Overloaded,
    RateLimited,
    Unauthenticated,
    UpstreamError,
)
from qwen_free_api.events import (
    Finish,
    Heartbeat,
    Opened,
    StreamEvent,
    TextDelta,
    ToolCalled,
    Usage,
)
from qwen_free_api.health import Prober, Verdict, verdict
from qwen_free_api.janitor import Janitor
from qwen_free_api.logins import Logins
from qwen_free_api.models import ModelInfo
from qwen_free_api.pool import Account, Pool, account_of
from qwen_free_api.prompt import fit
from qwen_free_api.respond import Stop
from qwen_free_api.settings import Settings
from qwen_free_api.shaping import Shaper, needs_shaping, shape
from qwen_free_api.tokens import Tokenizer
from qwen_free_api.tool_prompt import FIRMER
from qwen_free_api.upstreams import Upstream
from qwen_free_api.upstreams.cn import Cn
from qwen_free_api.upstreams.http import Http
from qwen_free_api.upstreams.intl import Intl

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
FAILOVER = (CredentialRejected, RateLimited, Blocked)


def fails_over(error: GatewayError) -> bool:
    """Worth another account before the first byte: the account was refused, or the upstream
    failed this one request (HTTP 5xx, a reset connection, an error frame). Not timeouts (each
    try would wait as long again), nor what another account would meet too (a prompt too long,
    moderation, a protocol change)."""
    return isinstance(error, FAILOVER) or type(error) in (UpstreamError, Overloaded)


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is asking: their own credentials (seed mode), or None for the server's pool."""

    seeds: tuple[Account, ...] | None = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request ready to send: the chat, who may answer it, and what was left out."""

    chat: ChatRequest
    accounts: list[Account]
    fallback: ChatRequest | None  # the whole history, if a continuation cannot be answered
    everyone: list[Account]
    dropped: int  # oldest messages left out to fit the prompt budget


class Gateway:
    """Long-lived state shared by every request: upstream clients, pool, tokenizer, clean-up."""

    def __init__(
        self,
        settings: Settings,
        http: Http,
        janitor: Janitor,
        tokenizer: Tokenizer,
        pool: Pool,
        stop: Stop,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self.janitor = janitor
        self.tokenizer = tokenizer
        self.pool = pool
        self.upstreams: dict[Dialect, Upstream] = {
            "cn": Cn(settings, http, janitor),
            "intl": Intl(settings, http, janitor),
        }
        self.prober = Prober(pool, self.upstreams, settings.health_interval)
        self.http = http
        pool.on_disabled = self._announce_disabled
        intl = self.upstreams["intl"]
        assert isinstance(intl, Intl)
        self.logins = Logins(pool, settings.logins, settings.login_refresh_before)
        self.logins.sign_in = intl.sign_in
        pool.freshen = self.logins.fresh
        self.conversations = Conversations(settings, pool.store, pool, self.upstreams, janitor)

    def _announce_disabled(self, account: Account, reason: str) -> None:
        url = self.settings.webhook_url
        if not url:
            return
        event = {
            "event": "credential_disabled",
            "id": account.id,
            "credential": account.masked,
            "dialect": account.credential.dialect,
            "reason": reason,
        }
        body = json.dumps(event).encode()
        headers = {"content-type": "application/json"}
        post = self.http.request("POST", url, headers=headers, body=body)
        self.janitor.spawn(_discard(post), "calling the webhook")

    def authorize(self, key: str | None) -> Caller:
        """Pool mode: `key` must be a client key. Seed mode: `key` is the credential list."""
        if self.settings.pool_mode:
            if not key or not any(
                hmac.compare_digest(key.encode(), allowed.encode())
                for allowed in self.settings.api_keys
            ):
                raise Unauthenticated("missing or invalid API key")
            return Caller()
        if not key:
            raise Unauthenticated(
                "send your Qwen credentials as `Authorization: Bearer <ticket or JWT>`"
            )
        return Caller(tuple(account_of(raw, "seed") for raw in key.split(",") if raw.strip()))

    def accounts_of(self, caller: Caller | None) -> list[Account]:
        if caller is not None and caller.seeds is not None:
            return list(caller.seeds)
        return self.pool.accounts

    async def prepare(self, chat: ChatRequest, caller: Caller) -> Prepared:
        """Decide how to send `chat`: continuing a known conversation, or its (fitted) history."""
        accounts = self.accounts_of(caller)
        plan = await self.conversations.plan(chat, accounts)
        budget = self.settings.prompt_budget
        fitted, dropped = fit(chat, budget)
        if plan.account is not None:
            fallback = fitted if plan.automatic else None
            sent = await fetch_attachments(plan.chat, self.settings)
            return Prepared(sent, [plan.account], fallback, accounts, 0)
        sent = await fetch_attachments(fitted, self.settings)
        return Prepared(sent, accounts, None, accounts, dropped)

    async def stream(self, prepared: Prepared) -> AsyncIterator[StreamEvent]:
        """Answer with one credential; until the answer starts, fail over to another.

        The stream starts with `Opened`, held back until the first real event, so that an error
        between the upstream's acceptance and its first words can still fail over or become an
        HTTP status.
        """
        if self.settings.log_prompts:
            log.debug("prompt: %r", prepared.chat.prompt_text())
        if is_drawing(prepared.chat.model):
            drawn = draw_in_chat(self.pool, self.upstreams, prepared.everyone, prepared.chat)
            async for event in drawn:
                yield event
            return
        try:
            # aclosing: a client dialect that stops reading at the finish (Anthropic) closes
            # this stream; each layer closes the next at once, so the lease is released
            # before the response ends, not whenever the abandoned generators are collected.
            async with aclosing(self._insisting(prepared.chat, prepared.accounts)) as answer:
                async for event in answer:
                    yield event
        except FAILOVER:
            if prepared.fallback is None:
                raise
            # The conversation's own account cannot answer now: resend the whole history.
            fallback = await fetch_attachments(prepared.fallback, self.settings)
            async with aclosing(self._insisting(fallback, prepared.everyone)) as answer:
                async for event in answer:
                    yield event

    async def _insisting(
        self, chat: ChatRequest, accounts: list[Account]
    ) -> AsyncGenerator[StreamEvent, None]:
        """When a tool call is required, an answer without one is held back and asked again,
        once, more firmly; the second answer goes out whatever it is."""
        if chat.tool_choice.mode != "required" or not chat.tools:
            async with aclosing(self._failover(chat, accounts)) as answer:
                async for event in answer:
                    yield event
            return
        held: list[StreamEvent] | None = []
        async with aclosing(self._failover(chat, accounts)) as answer:
            async for event in answer:
                if held is None:
                    yield event
                    continue
                held.append(event)
                if isinstance(event, ToolCalled):
                    for earlier in held:
                        yield earlier
                    held = None
        if held is not None:
            log.info("a tool call was required but the answer had none; asking again")
            firmer = Message("system", FIRMER)
            retry = dataclasses.replace(chat, messages=(*chat.messages, firmer))
            async with aclosing(self._failover(retry, accounts)) as answer:
                async for event in answer:
                    yield event

    async def _failover(
        self, chat: ChatRequest, accounts: list[Account]
    ) -> AsyncGenerator[StreamEvent, None]:
        tried: set[str] = set()
        failure: GatewayError | None = None
        for attempt in range(1, MAX_ATTEMPTS + 1):
            remaining = [a for a in accounts if a.id not in tried]
            if failure is not None and not remaining:
                raise failure
            started = False
            try:
                async with (
                    self.pool.lease(remaining) as account,
                    aclosing(self._answer(chat, account)) as answer,
                ):
                    tried.add(account.id)
                    async for event in answer:
                        started = True
                        yield event
                return
            except UpstreamError as error:
                if started or attempt == MAX_ATTEMPTS or not fails_over(error):
                    raise
                if failure is not None and len(tried) < attempt:
                    raise failure from None  # nothing else could be leased: report the cause
                failure = error
                log.warning("credential failed (%s); trying another", type(error).__name__)

    async def _answer(
        self, chat: ChatRequest, account: Account
    ) -> AsyncGenerator[StreamEvent, None]:
        """One account's answer, shaped to the request; a finished one is recorded."""
        conversation = ""
        events = self._started(chat, account.credential)
        shaper = Shaper(chat) if needs_shaping(chat) else None
        texts = shaper.text_parts if shaper else []
        async for event in shape(events, shaper) if shaper else events:
            if isinstance(event, TextDelta) and shaper is None:
                texts.append(event.text)
            elif isinstance(event, Opened):
                conversation = event.conversation_id
            elif isinstance(event, Finish):
                calls = tuple(shaper.calls) if shaper else ()
                answer = Message("assistant", "".join(texts), calls)
                await self.conversations.finished(chat, conversation, account, answer)
            yield event

    async def _started(
        self, chat: ChatRequest, credential: Credential
    ) -> AsyncIterator[StreamEvent]:
        """One upstream's events, `Opened` held back until the first real event."""
        opened: Opened | None = None
        started = False
        async for event in self.upstreams[credential.dialect].stream(chat, credential):
            if not started:
                if isinstance(event, Opened):
                    opened = event
                    continue
                if isinstance(event, Heartbeat):
                    continue
                started = True
                yield opened or Opened(f"{credential.dialect}.{uuid.uuid4().hex}", chat.model)
            yield event

    def estimate(self, chat: ChatRequest, text: str, reasoning: str) -> Usage:
        """A local token count, for when the upstream reported none."""
        prompt = self.tokenizer.count(chat.prompt_text())
        completion = self.tokenizer.count(text) + self.tokenizer.count(reasoning)
        return Usage(prompt, completion, estimated=True)

    async def models(self, caller: Caller | None) -> list[tuple[Dialect, ModelInfo]]:
        """Every backend's models, refreshed from the upstream when a credential allows."""
        credentials = [a.credential for a in self.accounts_of(caller)]
        refreshes = []
        for dialect, upstream in self.upstreams.items():
            credential = next((c for c in credentials if c.dialect == dialect), None)
            if credential is not None and upstream.catalogue.stale():
                refreshes.append(upstream.catalogue.refresh(_fetcher(upstream, credential)))
        if refreshes:
            await asyncio.gather(*refreshes)
        return [
            (dialect, model)
            for dialect, upstream in self.upstreams.items()
            for model in upstream.catalogue.models
        ]

    async def check(self, raw: str) -> Verdict:
        credential = parse_credential(raw)
        return await verdict(self.upstreams[credential.dialect], credential)


async def _discard(work: Awaitable[object]) -> None:
    await work


def _fetcher(
    upstream: Upstream, credential: Credential
) -> Callable[[], Awaitable[list[ModelInfo]]]:
    async def fetch() -> list[ModelInfo]:
        return await upstream.list_models(credential)

    return fetch
