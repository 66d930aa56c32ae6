"""The one settings object: QFA_* environment variables, a .env file, and `serve` flags."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    """Every knob of the service; each field's description is its documentation."""

    model_config = SettingsConfigDict(
        env_prefix="QFA_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    host: str = Field("0.0.0.0", description="Interface the HTTP server listens on.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port the HTTP server listens on.")
    tokens: CommaList = Field(
        default_factory=list,
        description="Server-side upstream credentials, comma-separated (cn tickets or intl JWTs; "
        "prefix cn: or intl: to force a backend). Empty = seed mode: clients send their own "
        "credentials as `Authorization: Bearer T1,T2`.",
    )
    api_keys: CommaList = Field(
        default_factory=list,
        description="Keys clients must present (Bearer) when QFA_TOKENS is set, comma-separated.",
    )
    tokens_file: str | None = Field(
        None, description="A file of further upstream credentials, one per line (# comments)."
    )
    admin_key: str | None = Field(
        None, description="Key for the admin API (/v1/accounts); unset = admin API off."
    )
    account_concurrency: int = Field(
        4, gt=0, description="Most requests one credential serves at once (all instances)."
    )
    min_interval: float = Field(
        0.0, ge=0, description="Least seconds between two requests of one credential."
    )
    interval_jitter: float = Field(
        0.0, ge=0, description="Up to this many random seconds added to each wait."
    )
    quota_cooldown: float = Field(
        3600.0, gt=0, description="Cooldown after a quota error that names no reset time."
    )
    transient_cooldown: float = Field(
        10.0, ge=0, description="Cooldown after a transient failure (5xx, reset, timeout)."
    )
    waf_pause: float = Field(
        60.0, gt=0, description="First pause of a whole backend after a WAF/captcha answer."
    )
    waf_pause_max: float = Field(
        1800.0, gt=0, description="Longest backend pause; pauses double up to it."
    )
    webhook_url: str | None = Field(
        None,
        description="URL that gets a JSON POST when a credential is disabled (no secret in it).",
    )
    health_interval: float = Field(
        600.0, ge=0, description="Seconds between health probes of pool credentials (0: off)."
    )
    lease_ttl: float = Field(
        60.0,
        gt=0,
        description="Seconds an in-flight lease lives if its holder dies (renewed every third).",
    )
    cn_base_url: str = Field(
        "https://chat2.qianwen.com", description="cn backend: chat endpoint host."
    )
    cn_api_base_url: str = Field(
        "https://chat2-api.qianwen.com",
        description="cn backend: sessions, model list and token check host.",
    )
    cn_sec_base_url: str = Field(
        "https://sec.qianwen.com", description="cn backend: device registration (signing) host."
    )
    cn_origin: str = Field(
        "https://www.qianwen.com", description="cn backend: Origin/Referer the web client sends."
    )
    intl_base_url: str = Field("https://chat.qwen.ai", description="intl backend host.")
    cn_workspace_base_url: str = Field(
        "https://workspace-res.qianwen.com",
        description="cn backend: upload host (oss_token and the upload callback).",
    )
    cn_oss_base_url: str = Field(
        "",
        description="cn backend: where uploads are PUT; empty: https://<host the upstream names>.",
    )
    intl_oss_base_url: str = Field(
        "",
        description="intl backend: where uploads are PUT; empty: "
        "https://<bucket>.<region>.aliyuncs.com, else <this>/<bucket>.",
    )
    fetch_max_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest image or document fetched from a client's URL."
    )
    fetch_timeout: float = Field(
        20.0, gt=0, description="Seconds allowed to fetch one image or document from a URL."
    )
    image_poll_interval: float = Field(
        3.0, ge=0, description="Seconds between polls of a cn image generation's result."
    )
    image_timeout: float = Field(
        180.0, gt=0, description="Seconds an image generation may take before it fails (504)."
    )
    store: str = Field(
        "sqlite:///data/qwen-free-api.db",
        description="Where shared state lives: sqlite:///path or redis://host:port/db.",
    )
    url_allowlist: CommaList = Field(
        default_factory=list,
        description="Hosts exempt from the private-address check when fetching user URLs.",
    )
    proxy: str | None = Field(
        None, description="Outbound proxy for upstream calls, e.g. http://127.0.0.1:7890."
    )
    impersonate: str = Field(
        "chrome", description="Browser TLS fingerprint for upstream calls (curl_cffi target)."
    )
    upstream_max_connections: int = Field(
        1000, gt=0, description="Most upstream connections open at once."
    )
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to connect to the upstream.")
    read_timeout: float = Field(
        120.0, gt=0, description="Seconds the upstream may stay silent before we give up (504)."
    )
    first_event_timeout: float = Field(
        15.0,
        gt=0,
        description="Seconds to wait for the first upstream event before sending response "
        "headers; errors before it become HTTP statuses, after it in-band errors.",
    )
    keepalive_interval: float = Field(
        10.0, gt=0, description="Seconds between SSE keep-alive comments while nothing arrives."
    )
    shutdown_timeout: float = Field(
        30.0,
        ge=0,
        description="On SIGTERM, seconds running answers may take to finish before they are "
        "ended with an error event.",
    )
    reasoning_in_content: bool = Field(
        False,
        description="Put reasoning inside <think>…</think> in `content` instead of "
        "`reasoning_content`.",
    )
    delete_sessions: bool = Field(
        True,
        description="Delete upstream chat sessions: failed ones at once, answered ones when "
        "idle for QFA_CONVERSATION_TTL (false: never delete).",
    )
    conversation_ttl: float = Field(
        900.0,
        ge=0,
        description="Seconds an answered conversation stays continuable; then its upstream "
        "session is deleted (0: delete right after the answer, no continuation).",
    )
    sweep_interval: float = Field(
        30.0, gt=0, description="Seconds between sweeps for idle upstream sessions."
    )
    models_ttl: float = Field(
        3600.0, gt=0, description="Seconds the upstream model lists are cached."
    )
    cn_web_version: str = Field(
        "4.9.0", description="cn web client version sent as wv/ve (the upstream checks it)."
    )
    intl_web_version: str = Field(
        "0.2.63", description="intl web client version sent in the `version` header."
    )
    intl_thinking_format: Literal["summary", "detail"] = Field(
        "summary", description="intl reasoning format: summary (as the web app) or detail."
    )
    cn_canned_answers: CommaList = Field(
        [],
        description="Fixed answers a cn server gives instead of an error when it refuses the "
        "request's signature; an answer equal to one of them becomes a signing failure.",
    )
    intl_logins: CommaList = Field(
        [],
        description="intl accounts to sign in to and keep signed in, as `email:password,…`: "
        "each gets a JWT at start-up and a fresh one before it expires.",
    )
    login_refresh_before: float = Field(
        86400.0,
        ge=0,
        description="Seconds before a signed-in intl JWT expires that it is renewed.",
    )
    model_map: CommaList = Field(
        [
            "claude-*haiku*=qwen-flash",
            "claude-*=qwen-max",
            "gemini-*lite*=qwen-flash",
            "gemini-*flash*=qwen-plus",
            "gemini-*=qwen-max",
            "gpt-*mini*=qwen-flash",
            "gpt-*nano*=qwen-flash",
            "gpt-*=qwen-max",
            "o[0-9]*=qwen-max",
            "chatgpt-*=qwen-max",
        ],
        description="Client model names (shell-style patterns, first match wins) mapped to a "
        "Qwen model or alias (qwen-max: strongest, qwen-plus: default, qwen-flash: fastest), as "
        "`pattern=model,…`. Real upstream model ids always work as they are.",
    )
    prompt_budget: int = Field(
        400_000,
        gt=0,
        description="Most characters of history folded into one upstream prompt; older turns "
        "beyond it are dropped (never the system prompt or the last turn).",
    )
    max_body_bytes: int = Field(
        20 * 1024 * 1024, gt=0, description="Largest request body accepted (413 above it)."
    )
    max_header_bytes: int = Field(
        64 * 1024,
        gt=0,
        description="Largest request line plus headers accepted (414 or 431 above it).",
    )
    header_timeout: float = Field(
        10.0, gt=0, description="Seconds a client may take to send a request's headers (408)."
    )
    body_timeout: float = Field(
        120.0,
        gt=0,
        description="Seconds a client may take to send a request's body after its headers (408).",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_prompts: bool = Field(
        False, description="Log prompts and answers (debugging only; off by default)."
    )
    log_format: Literal["text", "json"] = Field(
        "text",
        description="Log line format: text, or json (one JSON object per line, with each "
        "request's fields).",
    )
    metrics_require_admin: bool = Field(
        False, description="Serve GET /metrics only to callers with the admin key."
    )

    @field_validator(
        "tokens",
        "api_keys",
        "url_allowlist",
        "model_map",
        "intl_logins",
        "cn_canned_answers",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator(
        "cn_base_url",
        "cn_api_base_url",
        "cn_sec_base_url",
        "intl_base_url",
        "cn_workspace_base_url",
        "cn_oss_base_url",
        "intl_oss_base_url",
    )
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("model_map")
    @classmethod
    def _check_map(cls, value: list[str]) -> list[str]:
        for entry in value:
            pattern, _, target = entry.partition("=")
            if not pattern.strip() or not target.strip():
                raise ValueError(f"model_map entry {entry!r} is not `pattern=model`")
        return value

    @property
    def models_by_pattern(self) -> list[tuple[str, str]]:
        pairs = (entry.partition("=") for entry in self.model_map)
        return [(pattern.strip().lower(), target.strip()) for pattern, _, target in pairs]

    @property
    def logins(self) -> list[tuple[str, str]]:
        pairs = (entry.partition(":") for entry in self.intl_logins)
        return [(email.strip(), password) for email, _, password in pairs]

    @property
    def pool_mode(self) -> bool:
        return bool(self.tokens or self.tokens_file or self.intl_logins)
