"""A faithful, scriptable fake of the Qwen web backends (cn chat2.qianwen.com, intl chat.qwen.ai).

    fake = FakeUpstream(sign_mode="hard")
    fake.enqueue("intl", Script(answer="Hello", piece=2))
    with ServerThread(fake.app) as server:
        ...  # point every upstream base URL of the proxy at server.url

Credentials: a cn ticket (cookie `tongyi_sso_ticket`) is logged in unless it starts with `bad`
or `expired`; `scenario-<error>-…` forces that error. An intl token is any JWT whose `exp` is in
the future (see `make_token`); a `scenario` claim forces that error (`revoked`: every call is
refused with 401). `refuse_deletes = True` makes every session/chat delete fail (HTTP 500).
`replay.ReplayUpstream` serves a `doctor --record` directory back instead. The fake intl
account is `user@example.com` / `password`.

Media: intl uploads (`getstsToken` + STS-signed OSS PUT on `/{bucket}/{file_path}`), cn uploads
(workspace `/1/oss_token`, pre-signed PUT on `/{object}`, `/1/oss/callback`), intl t2i streams
and cn image jobs (`/api/v1/chat/snap`, `req/detail`); every image is served back by the fake
behind its signed query (`key` / `auth_key`). A chat referencing uploads gets a default answer
ending `[<kind> <sha256[:12]> <name>]` per attachment; see `attachments_seen` and `media`.
"""

from __future__ import annotations

from qwen_free_api.testing.fake import FakeUpstream
from qwen_free_api.testing.intl_auth import FAKE_EMAIL, FAKE_PASSWORD, make_token
from qwen_free_api.testing.media_state import SeenAttachment
from qwen_free_api.testing.script import CANNED_REFUSAL, CN_ERRORS, INTL_ERRORS, Recorded, Script
from qwen_free_api.testing.server import ServerThread, run_fake

__all__ = [
    "CANNED_REFUSAL",
    "CN_ERRORS",
    "FAKE_EMAIL",
    "FAKE_PASSWORD",
    "INTL_ERRORS",
    "FakeUpstream",
    "Recorded",
    "Script",
    "SeenAttachment",
    "ServerThread",
    "make_token",
    "run_fake",
]
