"""cn image generation (protocol §8.6): the chat starts a job, `chat/snap` / `req/detail` reveal it.

A chat body with `"ai_tool_scene":"zaodian_generate_image"` must carry `biz_data`, a JSON
string `{"req":{"rootModel","prompt","originPrompt","negativePrompt","params":{"size":"1:1"|"3:4"|
"4:3"|"9:16"|"16:9","features":[…]}},"bizScene":"genImage"}`; the stream answers and completes
before any image exists. Then:

- `POST /api/v1/chat/snap?<query>` with the same chat body, signed afresh each time (the salts
  are one-time; sign_mode as for chat) → `{"trace_id","code":0,"msg":"success","success":true,
  "httpCode":200,"data":{session_id, req_id, status:"processing"|"complete",
  response_messages:[{mime_type:"multi_load/iframe", content:<text>, status, meta_data:{multi_load:
  [{type:"ai_generate_image_list", source_seq, content:{status, resource_infos:[{refer_id, url,
  width, height}], layout_list:[{image:[refer_id…]}]}}]}}]}}`; pending answers carry no URLs
  except a static `g.alicdn.com` loading image (to be ignored). Unknown request: no `data`.
- `GET /api/v1/session/req/detail?<query>&session_id=<id>&req_id=<req_id>_complete` → the same
  `data` once complete; no `data` while pending or unknown (as captured).

`image_pending` answers stay pending (both paths count), `image_never` never completes,
`image_refused` completes with no image and a refusal text. URLs carry `?auth_key=` and are
served by the fake (GET without it: 403).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from qwen_free_api.testing.cn_files import NOT_LOGIN, signature_refusal
from qwen_free_api.testing.cn_security import CHAT_SCENE, SecurityEndpoints
from qwen_free_api.testing.cn_tickets import TICKET_COOKIE, ticket_valid
from qwen_free_api.testing.images import CN_REFUSAL, SIZES, image_for, register_cdn
from qwen_free_api.testing.media_state import CnMaterial, ImageJob
from qwen_free_api.testing.script import Script
from qwen_free_api.testing.state import FakeState

IMAGE_SCENE = "zaodian_generate_image"
LOADING_IMAGE = "https://g.alicdn.com/qwenweb/qianwen-web/0.0.1/static/loading.gif"
SOURCE_SEQ = "ai_generate_image_list_1"


def image_request(body: dict[str, Any]) -> str | tuple[str, str] | None:
    """None for an ordinary chat; (prompt, size) for an image request; else what is wrong."""
    if body.get("ai_tool_scene") != IMAGE_SCENE:
        return None
    raw = body.get("biz_data")
    if not isinstance(raw, str):
        return "参数错误: biz_data must be a JSON string"
    try:
        biz = json.loads(raw)
    except ValueError:
        return "参数错误: biz_data is not JSON"
    req = biz.get("req") if isinstance(biz, dict) else None
    if not isinstance(req, dict) or biz.get("bizScene") != "genImage":
        return "参数错误: biz_data needs req and bizScene genImage"
    prompt, params = req.get("prompt"), req.get("params")
    if not isinstance(prompt, str) or not prompt.strip():
        return "参数错误: req.prompt is required"
    size = params.get("size") if isinstance(params, dict) else None
    if size not in SIZES:
        return f"参数错误: req.params.size must be one of {sorted(SIZES)}"
    return prompt, str(size)


def start_job(
    state: FakeState, script: Script, *, base: str, ticket: str, body: dict[str, Any], size: str
) -> ImageJob:
    """Create the job of an accepted image request (its images are stored at once)."""
    req_id = str(body.get("req_id"))
    refused = script.image_refused or script.images <= 0
    job = ImageJob(
        ticket=ticket,
        session_id=str(body.get("session_id")),
        req_id=req_id,
        answer=(script.answer or CN_REFUSAL) if refused else "",
        pending=-1 if script.image_never else script.image_pending,
        refused=refused,
        images=[],
        size=size,
    )
    for index in range(0 if refused else script.images):
        data, _ = image_for(size, f"{req_id}/{index}")
        refer_id = uuid.uuid4().hex
        blob = register_cdn(
            state,
            base,
            "png",
            data,
            content_type="image/png",
            owner=ticket,
            name=f"{refer_id}.png",
        )
        job.images.append(blob)
        material = CnMaterial(refer_id, ticket, blob.name, "PNG", (blob.url,), data)
        with state.locked():
            state.media.materials[refer_id] = material
    with state.locked():
        state.media.image_jobs[req_id] = job
    state.changed()
    return job


def _envelope(data: dict[str, Any] | None) -> Response:
    body: dict[str, Any] = {"trace_id": uuid.uuid4().hex, "code": 0, "msg": "success"}
    body |= {"success": True, "httpCode": 200}
    if data is not None:
        body["data"] = data
    return JSONResponse(body)


def job_data(job: ImageJob, *, ready: bool) -> dict[str, Any]:
    """The `data` of a snap / detail answer."""
    width, height = SIZES.get(job.size, SIZES["1:1"])
    refer_ids = [blob.name.removesuffix(".png") for blob in job.images] if ready else []
    infos = [
        {"refer_id": refer, "url": blob.url, "width": width, "height": height}
        for refer, blob in zip(refer_ids, job.images, strict=False)
    ]
    content: dict[str, Any] = {
        "status": "complete" if ready else "processing",
        "resource_infos": infos,
        "layout_list": [{"image": refer_ids}] if refer_ids else [],
    }
    if not ready:
        content["loading_image"] = LOADING_IMAGE
    item = {"type": "ai_generate_image_list", "source_seq": SOURCE_SEQ, "content": content}
    status = "complete" if ready else "processing"
    message = {
        "mime_type": "multi_load/iframe",
        "content": job.answer if ready else "",
        "status": status,
        "meta_data": {"multi_load": [item]},
    }
    return {
        "session_id": job.session_id,
        "req_id": job.req_id,
        "status": status,
        "response_messages": [message],
    }


class CnImages:
    """The two ways to learn whether a cn image job is done."""

    def __init__(self, state: FakeState, security: SecurityEndpoints) -> None:
        self.state = state
        self.security = security

    def routes(self) -> list[Route]:
        """`chat/snap` (chat2) and `session/req/detail` (chat2-api)."""
        return [
            Route("/api/v1/chat/snap", self.snap, methods=["POST"]),
            Route("/api/v1/session/req/detail", self.detail, methods=["GET"]),
        ]

    def _poll(self, job: ImageJob) -> bool:
        """Count one poll; True once the job is complete."""
        with self.state.locked():
            job.polls += 1
            if job.pending < 0:
                ready = False
            elif job.pending > 0:
                job.pending -= 1
                ready = False
            else:
                ready = True
        self.state.changed()
        return ready

    def _job(self, ticket: str, session_id: object, req_id: object) -> ImageJob | None:
        with self.state.locked():
            job = self.state.media.image_jobs.get(str(req_id))
        if job is None or job.ticket != ticket or job.session_id != session_id:
            return None
        return job

    async def snap(self, request: Request) -> Response:
        """The job's snapshot; the body is the (re-signed) chat body of the image request."""
        raw = await request.body()
        refusal = signature_refusal(self.state, self.security, request, raw, CHAT_SCENE)
        if refusal is not None:
            return refusal
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _envelope(None)
        job = self._job(str(ticket), body.get("session_id"), body.get("req_id"))
        if job is None:
            self.state.note_media_refusal("cn chat/snap", "unknown image request")
            return _envelope(None)
        ready = self._poll(job)
        return _envelope(job_data(job, ready=ready))

    async def detail(self, request: Request) -> Response:
        """`req/detail`: data only once the job is complete."""
        query = request.query_params
        if not query.get("ut"):
            return JSONResponse({"success": False, "code": 400, "msg": "ut"}, status_code=400)
        ticket = request.cookies.get(TICKET_COOKIE)
        if not ticket_valid(ticket):
            return JSONResponse(NOT_LOGIN)
        req_id = query.get("req_id", "")
        if not req_id.endswith("_complete"):
            return _envelope(None)
        job = self._job(str(ticket), query.get("session_id"), req_id.removesuffix("_complete"))
        if job is None or not self._poll(job):
            return _envelope(None)
        return _envelope(job_data(job, ready=True))
