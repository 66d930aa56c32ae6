"""The cn signing host (sec.qianwen.com): register, refresh, time calibration, salt bookkeeping."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing.state import Device, FakeState

CHAT_SCENE = "qwen_chat"
DEFAULT_SCENES = (CHAT_SCENE, "workspace_api")
ACTKN_LIFETIME_S = 24 * 3600
DEFAULT_POOL = 20
MAX_POOL = 200


def new_salt(serial: int) -> str:
    """A salt shaped like the captured one: 40 bytes (32 random + 8 ASCII digits) in base64."""
    raw = secrets.token_bytes(32) + f"{serial % 10**8:08d}".encode("ascii")
    return base64.b64encode(raw).decode("ascii")


def _pool_size(headers: Mapping[str, str]) -> int:
    try:
        wanted = int(headers.get("eo-clt-sftcnt", DEFAULT_POOL))
    except ValueError:
        wanted = DEFAULT_POOL
    return min(max(wanted, 1), MAX_POOL)


def _envelope(
    data: dict[str, Any], *, status: int = 0, code: str = "OK", msg: str = "success"
) -> Response:
    body = {"status": status, "code": code, "msg": msg, "data": data}
    return JSONResponse(body)


def _scenes_from(values: Iterable[object]) -> list[str]:
    return [v for v in values if isinstance(v, str) and v]


class SecurityEndpoints:
    """Issues devices and one-time salts, and checks the salt of a signed chat request."""

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def routes(self) -> list[Route]:
        """The sec host's paths."""
        return [
            Route("/security/external/access/register", self.register, methods=["POST"]),
            Route("/security/external/access/refresh", self.refresh, methods=["GET"]),
            Route("/api/calibration/getMillisTimeStamp", self.calibration, methods=["GET"]),
        ]

    async def register(self, request: Request) -> Response:
        """A new device with top-level and per-scene salt pools (every body field is ignored)."""
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            body = {}
        wanted = body.get("unifyRelateGenerate") if isinstance(body, dict) else None
        scenes = list(DEFAULT_SCENES)
        scenes += [s for s in _scenes_from(wanted or []) if s not in scenes]
        device = Device(
            dvidn="eCy#" + secrets.token_urlsafe(24),
            actkn=secrets.token_urlsafe(32),
            actkn_dl=int(time.time()) + ACTKN_LIFETIME_S,
            scene_actkn={scene: secrets.token_urlsafe(32) for scene in scenes},
            salts={},
        )
        with self.state.locked():
            self.state.devices[device.dvidn] = device
        data = self._issue(device, scenes, _pool_size(request.headers))
        return _envelope(data)

    async def refresh(self, request: Request) -> Response:
        """New salts for a registered device; needs the top-level dvidn and actkn headers."""
        dvidn = request.headers.get("eo-clt-dvidn", "")
        actkn = request.headers.get("eo-clt-actkn", "")
        with self.state.locked():
            device = self.state.devices.get(dvidn)
        now = int(time.time())
        if device is None or actkn != device.actkn or now > device.actkn_dl:
            return _envelope({}, status=1, code="EX010", msg="设备未注册或令牌已过期")
        scenes = _scenes_from(request.query_params.get("unifyRelateGenerate", "").split(","))
        with self.state.locked():
            for scene in scenes:
                device.scene_actkn.setdefault(scene, secrets.token_urlsafe(32))
            device.actkn_dl = now + ACTKN_LIFETIME_S
        data = self._issue(device, scenes or list(device.scene_actkn), _pool_size(request.headers))
        return _envelope(data)

    async def calibration(self, request: Request) -> Response:
        """Server time in milliseconds, as a string."""
        millis = str(int(time.time() * 1000))
        return JSONResponse({"data": {"millisTimeStamp": millis, "exLoadBxTimeout": 1000}})

    def _issue(self, device: Device, scenes: list[str], count: int) -> dict[str, Any]:
        with self.state.locked():
            top = self._fill(device, "", count)
            relate = [
                {
                    "businessScene": scene,
                    "eo-clt-actkn": device.scene_actkn[scene],
                    "eo-clt-actkn-dl": device.actkn_dl,
                    "eo-clt-bacsft": self._fill(device, scene, count),
                }
                for scene in scenes
            ]
        self.state.changed()
        return {
            "eo-clt-dvidn": device.dvidn,
            "eo-clt-snver": "lv",
            "eo-clt-actkn": device.actkn,
            "eo-clt-actkn-dl": device.actkn_dl,
            "eo-clt-bacsft": top,
            "unifyRelate": relate,
        }

    @staticmethod
    def _fill(device: Device, scene: str, count: int) -> list[str]:
        pool = device.salts.setdefault(scene, set())
        fresh = [new_salt(len(pool) + i) for i in range(count)]
        pool.update(fresh)
        return fresh

    def spend_salt(self, headers: Mapping[str, str], scene: str = CHAT_SCENE) -> str | None:
        """Spend the request's salt of `scene`; None when valid, else why it is not."""
        dvidn = headers.get("eo-clt-dvidn", "")
        salt = headers.get("eo-clt-sacsft", "")
        with self.state.locked():
            device = self.state.devices.get(dvidn)
            if device is None:
                return "unknown eo-clt-dvidn"
            tokens = {device.actkn, device.scene_actkn.get(scene, "")}
            if headers.get("eo-clt-actkn", "") not in tokens:
                return "eo-clt-actkn was not issued to this device"
            if time.time() > device.actkn_dl:
                return "eo-clt-actkn expired"
            pool = device.salts.get(scene, set())
            if salt not in pool:
                return f"eo-clt-sacsft not issued for {scene} or already used"
            pool.discard(salt)
        self.state.changed()
        return None

    def expire_all(self) -> None:
        """Make every issued actkn expired (to test re-registration)."""
        with self.state.locked():
            for device in self.state.devices.values():
                device.actkn_dl = int(time.time()) - 1
        self.state.changed()
