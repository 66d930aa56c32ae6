"""Conversations: continue an upstream session natively, by its id or by recognising a history.

Every answered conversation is recorded in the store with the hash of its messages (answer
included). A later request that names its id, or that resends a history whose prefix has that
hash, continues the same upstream session and sends only the new turn. Idle sessions are
deleted upstream by a sweeper once their time-to-live has passed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time

from qwen_free_api.chat import ChatRequest, Message
from qwen_free_api.credentials import Dialect
from qwen_free_api.errors import BadRequest, GatewayError
from qwen_free_api.janitor import Janitor
from qwen_free_api.pool import Account, Pool, account_of
from qwen_free_api.settings import Settings
from qwen_free_api.store import Conversation, Store
from qwen_free_api.tool_prompt import fold
from qwen_free_api.upstreams import Upstream

log = logging.getLogger(__name__)

SWEEP_BATCH = 100


def history_hash(messages: tuple[Message, ...]) -> str:
    digest = hashlib.sha256()
    for message in messages:
        digest.update(message.role.encode() + b"\0" + fold(message).encode() + b"\1")
    return digest.hexdigest()


@dataclasses.dataclass(frozen=True, slots=True)
class Plan:
    chat: ChatRequest
    account: Account | None  # the account the conversation lives in, if it continues one
    automatic: bool = False  # continued because the history matched, not by explicit id


class Conversations:
    def __init__(
        self,
        settings: Settings,
        store: Store,
        pool: Pool,
        upstreams: dict[Dialect, Upstream],
        janitor: Janitor,
    ) -> None:
        self.settings = settings
        self.store = store
        self.pool = pool
        self.upstreams = upstreams
        self.janitor = janitor

    async def plan(self, chat: ChatRequest, accounts: list[Account]) -> Plan:
        if chat.conversation_id:
            ident = chat.conversation_id.removeprefix("chatcmpl-")
            record = await self.store.conversation(ident)
            account = self._owner(record, accounts) if record else None
            if account is None:
                raise BadRequest(
                    "conversation_id is unknown, expired or not yours; send the whole history",
                    param="conversation_id",
                )
            return Plan(dataclasses.replace(chat, conversation_id=ident), account)
        last = max((i for i, m in enumerate(chat.messages) if m.role == "assistant"), default=-1)
        if last < 0 or self.settings.conversation_ttl == 0:
            return Plan(chat, None)
        record = await self.store.conversation_by_prefix(history_hash(chat.messages[: last + 1]))
        account = self._owner(record, accounts) if record else None
        if record is None or account is None:
            return Plan(chat, None)
        return Plan(dataclasses.replace(chat, conversation_id=record.id), account, automatic=True)

    def _owner(self, record: Conversation, accounts: list[Account]) -> Account | None:
        owner = next((a for a in accounts if a.id == record.account), None)
        return owner

    async def finished(
        self, chat: ChatRequest, conversation_id: str, account: Account, answer: Message
    ) -> None:
        """After an answer: keep the session for continuation, or delete it now."""
        ttl = self.settings.conversation_ttl
        if ttl == 0:
            if self.settings.delete_sessions:
                self._delete_later(account, conversation_id)
            return
        now = time.time()
        data = {"secret": account.credential.secret} if account.source == "seed" else {}
        if chat.conversation_id:
            await self.store.drop_conversation(chat.conversation_id)
        prefix = history_hash((*chat.messages, answer))
        record = Conversation(
            conversation_id, account.id, account.credential.dialect, prefix, now, now + ttl, data
        )
        await self.store.put_conversation(record)

    def _delete_later(self, account: Account, conversation_id: str) -> None:
        upstream = self.upstreams[account.credential.dialect]
        self.janitor.spawn(
            upstream.delete(account.credential, conversation_id), "deleting an upstream session"
        )

    async def sweep(self) -> int:
        """Delete the upstream sessions of conversations idle past their TTL."""
        expired = await self.store.expired_conversations(time.time(), SWEEP_BATCH)
        for record in expired:
            account = self.pool.get(record.account)
            secret = record.data.get("secret")
            if account is None and secret:
                account = account_of(f"{record.dialect}:{secret}", "seed")
            if account is not None and self.settings.delete_sessions:
                try:
                    await self.upstreams["cn" if record.dialect == "cn" else "intl"].delete(
                        account.credential, record.id
                    )
                except GatewayError as error:
                    log.warning("could not delete an idle upstream session: %s", error)
            await self.store.drop_conversation(record.id)
        return len(expired)

    async def sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sweep_interval)
            try:
                await self.sweep()
            except Exception as error:  # the sweeper must outlive any one failure
                log.warning("session sweep failed: %s", error)
