"""cn request signing ("baxia ACS"): device registration, one-time salts, HMAC headers.

Spec §8.1: register once a day per ticket for a device id, an access token and a pool of
one-time salts per scene; sign each request with HMAC-SHA256 keyed by `salt:reqt` over
the body, then over `dvidn + "1.0.0" + query values + kp + body-sign`. We send an empty `kp`,
where the three serious implementations agree. Chat requests (and `chat/snap`) use the
`qwen_chat` scene's token and salts, workspace uploads the `workspace_api` scene's (§8.5).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from qwen_free_api.errors import SigningFailed, UpstreamError
from qwen_free_api.upstreams.http import Http

log = logging.getLogger(__name__)

SIGN_VERSION = "1.0.0"
CHAT_SCENE = "qwen_chat"
WORKSPACE_SCENE = "workspace_api"
REFILL_BELOW = 3
RENEW_BEFORE = 30 * 60  # seconds before the access token's deadline


def body_sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def request_sign(secret: str, dvidn: str, values: str, kp: str, bfg: str) -> str:
    message = f"{dvidn}{SIGN_VERSION}{values}{kp}{bfg}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def encode_query(pairs: Sequence[tuple[str, str]]) -> str:
    return "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)


@dataclass(slots=True)
class Pool:
    """One scene's access token and its unused one-time salts."""

    actkn: str
    salts: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Device:
    """What registration gave one ticket: identity, access tokens and unused salts.

    `actkn` and `salts` are the chat scene's; other scenes (uploads) are in `scenes`.
    """

    dvidn: str
    snver: str
    actkn: str
    deadline: float
    top_actkn: str
    salts: list[str] = field(default_factory=list)
    scenes: dict[str, Pool] = field(default_factory=dict)

    def usable(self, now: float, scene: str = CHAT_SCENE) -> bool:
        return bool(self.pool(scene).salts) and now < self.deadline - RENEW_BEFORE

    def pool(self, scene: str) -> Pool:
        """The token and salts of `scene` (the chat scene's when the device has no such scene)."""
        found = self.scenes.get(scene) if scene != CHAT_SCENE else None
        return found or Pool(self.actkn, self.salts)


def signed_headers(
    device: Device,
    pairs: Sequence[tuple[str, str]],
    body: bytes,
    reqt: str | None = None,
    scene: str = CHAT_SCENE,
) -> dict[str, str]:
    """The signing headers for one request of `scene`; consumes one of its salts."""
    pool = device.pool(scene)
    salt = pool.salts.pop()
    reqt = reqt or str(int(time.time() * 1000))
    secret = f"{salt}:{reqt}"
    bfg = body_sign(secret, body)
    values = "".join(value for _, value in pairs)
    return {
        "clt-acs-sign": request_sign(secret, device.dvidn, values, "", bfg),
        "clt-acs-bfg": bfg,
        "clt-acs-reqt": reqt,
        "clt-acs-request-params": ",".join(key for key, _ in pairs),
        "clt-acs-caer": "vrad",
        "eo-clt-dvidn": device.dvidn,
        "eo-clt-sacsft": salt,
        "eo-clt-snver": device.snver,
        "eo-clt-actkn": pool.actkn,
        "eo-clt-acs-ve": SIGN_VERSION,
        "eo-clt-acs-kp": "",
    }


class Signer:
    """Keeps one registered device per ticket and hands out signing headers."""

    def __init__(self, http: Http, sec_base_url: str, origin: str) -> None:
        self._http = http
        self._base = sec_base_url
        self._origin = origin
        self._devices: dict[str, Device] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def headers(
        self,
        ticket: str,
        pairs: Sequence[tuple[str, str]],
        body: bytes,
        scene: str = CHAT_SCENE,
    ) -> dict[str, str]:
        device = await self._device(ticket, scene)
        return signed_headers(device, pairs, body, scene=scene)

    def forget(self, ticket: str) -> None:
        """Drop a device the server refused, so the next request registers afresh."""
        self._devices.pop(ticket, None)

    async def _device(self, ticket: str, scene: str) -> Device:
        device = self._devices.get(ticket)
        if device is not None and _ready(device, scene):
            return device
        lock = self._locks.setdefault(ticket, asyncio.Lock())
        async with lock:
            device = self._devices.get(ticket)
            if device is None or not _ready(device, scene):
                device = await self._register(ticket)
                self._devices[ticket] = device
            return device

    async def _register(self, ticket: str) -> Device:
        chid = f"{int(time.time() * 1000)}{secrets.token_hex(5)}"
        body = json.dumps(_fingerprint(chid), separators=(",", ":")).encode()
        headers = {
            "content-type": "application/json",
            "cookie": f"tongyi_sso_ticket={ticket}",
            "origin": self._origin,
            "referer": f"{self._origin}/",
            "bx-umidtoken": "",
            "eo-clt-sftcnt": "100",
            "clt-acs-caer": "vrad",
            "eo-clt-acs-bx-intss": "2",
        }
        url = f"{self._base}/security/external/access/register?chid={chid}"
        reply = await self._http.request("POST", url, headers=headers, body=body)
        if reply.status != 200:
            raise UpstreamError(f"cn device registration failed with HTTP {reply.status}")
        return _device_from(reply.body)


def _ready(device: Device, scene: str) -> bool:
    return device.usable(time.time(), scene) and len(device.pool(scene).salts) > REFILL_BELOW


def _device_from(body: bytes) -> Device:
    try:
        envelope = json.loads(body)
        data = envelope["data"]
        if envelope.get("status", 0) != 0 or not isinstance(data, dict):
            raise KeyError("status")
        top = Pool(str(data["eo-clt-actkn"]), [str(s) for s in data.get("eo-clt-bacsft") or []])
        found = {
            str(s.get("businessScene")): s
            for s in data.get("unifyRelate") or []
            if isinstance(s, dict) and s.get("businessScene")
        }
        chat = found.get(CHAT_SCENE, {})
        pools = {name: _pool(found.get(name, {}), top) for name in (CHAT_SCENE, WORKSPACE_SCENE)}
        return Device(
            dvidn=str(data["eo-clt-dvidn"]),
            snver=str(data.get("eo-clt-snver", "lv")),
            actkn=pools[CHAT_SCENE].actkn,
            deadline=float(chat.get("eo-clt-actkn-dl") or data.get("eo-clt-actkn-dl") or 0)
            or time.time() + 86400,
            top_actkn=top.actkn,
            salts=pools[CHAT_SCENE].salts,
            scenes={WORKSPACE_SCENE: pools[WORKSPACE_SCENE]},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise SigningFailed("cn device registration returned an unexpected body") from error


def _pool(scene: dict[str, Any], top: Pool) -> Pool:
    """A scene's pool; the top-level one (shared, salts still used once) when it has none."""
    salts = scene.get("eo-clt-bacsft")
    if not isinstance(salts, list) or not salts:
        return top
    return Pool(str(scene.get("eo-clt-actkn") or top.actkn), [str(s) for s in salts])


def _fingerprint(chid: str) -> dict[str, object]:
    return {
        "screenResolution": "1920x1080",
        "cookieEnabled": True,
        "localStorageEnabled": True,
        "timezoneOffset": "Asia/Shanghai",
        "fontList": ["Arial", "Microsoft YaHei", "SimHei", "SimSun"],
        "pluginList": [],
        "language": ["zh-CN", "zh"],
        "unifyRelateGenerate": [CHAT_SCENE, WORKSPACE_SCENE],
        "fingerprint": secrets.token_hex(16),
        "businessScene": "qwen_web",
        "chid": chid,
    }
