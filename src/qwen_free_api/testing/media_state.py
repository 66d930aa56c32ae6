"""What the fake remembers about uploads, generated images and attachments (FakeState's lock)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

StsShape = Literal["by_path", "wrapped", "flat"]


@dataclass
class StsGrant:
    """intl: credentials issued by `getstsToken` for exactly one object."""

    access_key_id: str
    secret: str
    security_token: str
    bucket: str
    file_path: str
    file_id: str
    file_url: str
    filename: str
    filesize: int
    filetype: str
    owner: str
    expires: float
    used: bool = False


@dataclass
class IntlFile:
    """intl: an object PUT with a valid grant; referenced by `file_id` or `file_url`."""

    file_id: str
    file_url: str
    filename: str
    filetype: str
    owner: str
    data: bytes = field(repr=False)


@dataclass
class CnSlot:
    """cn: an object announced by `oss_token`, then PUT, then confirmed by `oss/callback`."""

    ticket: str
    object: str
    bucket: str
    endpoint: str
    host: str
    file_name: str
    content_type: str
    content_md5: str
    size: int
    authorization: str
    oss_headers: list[dict[str, str]]
    expires: float
    data: bytes | None = field(default=None, repr=False)
    ws_gid: str | None = None


@dataclass
class CnMaterial:
    """cn: a material created by a completed callback (or a generated image)."""

    ws_gid: str
    ticket: str
    file_name: str
    file_type: str
    urls: tuple[str, ...]  # material_cdn_url, material_url
    data: bytes = field(repr=False)


@dataclass
class Blob:
    """Bytes the fake serves by GET at `path`, when the request carries the right signed query."""

    path: str
    query_key: str  # "key" (intl output) or "auth_key" (cn CDN)
    query_value: str
    content_type: str
    data: bytes = field(repr=False)
    url: str = ""
    owner: str = ""  # intl user id or cn ticket
    name: str = ""


@dataclass
class ImageJob:
    """cn: one `zaodian_generate_image` request, answered through `chat/snap` / `req/detail`."""

    ticket: str
    session_id: str
    req_id: str
    answer: str
    pending: int  # pending answers still to give; < 0 = forever
    refused: bool
    images: list[Blob]
    size: str = "1:1"
    polls: int = 0


@dataclass
class SeenAttachment:
    """One attachment a chat request carried, resolved to the bytes the fake holds for it."""

    kind: str  # image | video | audio | document | file
    name: str
    sha256: str
    size: int
    ref: str  # file_id, ws_gid or generated image id
    url: str

    @property
    def marker(self) -> str:
        """What the default echo answer appends for this attachment."""
        return f"[{self.kind} {self.sha256[:12]} {self.name}]"


class MediaStore:
    """Per-fake media state plus its switches (reset with everything else)."""

    def __init__(self) -> None:
        self.sts_ttl = 900.0  # seconds an intl STS grant stays valid (also single-use)
        self.sts_shape: StsShape = "by_path"  # v1 path flat, v2 path wrapped in `data`
        self.sts_forbidden = False  # getstsToken answers 403 (token lacks permission)
        self.oss_token_ttl = 900.0  # seconds a cn oss_token authorization stays valid
        self.grants: dict[str, StsGrant] = {}  # access_key_id -> grant
        self.intl_files: dict[str, IntlFile] = {}  # file_id -> file
        self.cn_slots: dict[str, CnSlot] = {}  # object -> slot
        self.materials: dict[str, CnMaterial] = {}  # ws_gid -> material
        self.blobs: dict[str, Blob] = {}  # path -> blob
        self.image_jobs: dict[str, ImageJob] = {}  # req_id -> job
        self.refusals: list[dict[str, Any]] = []  # why a media step was refused (diagnostics)
