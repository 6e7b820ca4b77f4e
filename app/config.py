"""Every knob of the gateway, parsed and validated once at start-up.

Names follow the seed gateway (``API_KEYS``, ``ALLOWED_TOKENS``, ``AUTH_TOKEN``, ``BASE_URL``, ``MAX_FAILURES``,
``MAX_RETRIES``, ``TIME_OUT``, ...) so that its users' ``.env`` files keep working. List settings accept a JSON
list or a comma-separated string. A malformed value stops start-up with a message naming the setting
(:func:`load_settings`).
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

import orjson
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.keys.validate import checked_keys, is_placeholder

StrList = Annotated[list[str], NoDecode]


def _split_list(value: Any) -> Any:
    """Accept ``["a","b"]`` (JSON) or ``a,b`` (comma-separated); blanks are dropped."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return []
        if text.startswith("["):
            try:
                value = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"not a valid JSON list: {exc}") from None
        else:
            value = text.split(",")
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    raise ValueError("expected a JSON list or a comma-separated string")


def _default_model_map() -> tuple[tuple[str, str], ...]:
    from app.protocols.anthropic.models import DEFAULT_MODEL_MAP
    return DEFAULT_MODEL_MAP


class Settings(BaseSettings):
    """Gateway settings; see README for the meaning of each."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      case_sensitive=False)

    # Keys and access.
    api_keys: StrList = Field(default_factory=list)
    allowed_tokens: StrList = Field(default_factory=list)
    auth_token: str | None = None
    metrics_token: str | None = None
    console_session_ttl: float = Field(43200.0, gt=0, description="seconds a console login lasts")

    # Upstream.
    base_url: str = "https://generativelanguage.googleapis.com/v1beta"
    max_failures: int = Field(3, ge=1)
    max_retries: int = Field(10, ge=1, le=100)
    time_out: float = Field(300.0, gt=0, description="overall deadline of one request, seconds")
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(120.0, gt=0, description="longest silence from the upstream, seconds")
    max_wait: float = Field(5.0, ge=0, description="longest wait for a cooling key before answering 429")
    check_interval: float = Field(300.0, gt=0, description="seconds between probes of disabled keys")
    probe_model: str = Field("gemini-2.5-flash", pattern=r"^[A-Za-z0-9._-]+$")
    upstream_connections: int = Field(0, ge=0, description="upstream connection pool size; 0 = no limit")
    max_concurrent_per_key: int = Field(0, ge=0, description="0 = unlimited")
    key_projects: dict[str, str] = Field(default_factory=dict)
    # How keys reach Google (app/net/routes.py): proxies and kinds per key id (or key), a default proxy.
    outbound_proxy: str | None = Field(None, description="http(s):// or socks5:// proxy for every key; "
                                       "'direct' or empty = none")
    key_proxies: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> proxy URL or 'direct'")
    key_kinds: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> gemini | vertex")
    vertex_base_url: str = "https://aiplatform.googleapis.com/v1"
    # Which requests each key takes and its share (app/keys/key_policy.py), per key id (or key).
    key_weights: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> weight in the smooth round-robin (1-100)")
    key_tiers: Annotated[dict[str, int], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> tier (1 = preferred; a higher tier serves only "
        "when no key of a lower one can)")
    key_models: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> model allowlist (glob patterns)")
    key_exclude_models: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict, description="key id (or key) -> model blocklist (glob patterns)")
    ip_limit_threshold: int = Field(3, ge=2, description="distinct keys 429'd in the window that mean an IP-wide limit")
    ip_limit_window: float = Field(10.0, gt=0)

    # Translation.
    tools_code_execution_enabled: bool = False
    model_search: StrList = Field(default_factory=lambda: ["gemini-2.5-flash", "gemini-2.5-pro"])
    models_cache_ttl: float = Field(300.0, ge=0)
    affinity_ttl: float = Field(3600.0, ge=0, description="seconds a conversation stays bound to its key "
                                "after its last request; 0 turns affinity off")
    max_request_body: int = Field(32 * 1024 * 1024, ge=1024)
    image_fetch_max_bytes: int = Field(20 * 1024 * 1024, ge=1024)
    image_fetch_timeout: float = Field(10.0, gt=0)
    fetch_client_urls: bool = Field(True, description="fetch URLs clients name (image_url); false = 400")
    fetch_allow_private: bool = Field(False, description="let client URLs reach private/loopback addresses")
    stream_keepalive: float = Field(15.0, gt=0, description="seconds of upstream silence before an SSE ping")
    anthropic_model_map: Annotated[list[tuple[str, str]], NoDecode] = Field(
        default_factory=lambda: list(_default_model_map()),
        description="Anthropic surface: ordered glob pattern -> Gemini model; unmatched names pass through")

    # OpenAI media routes: the Gemini model behind OpenAI's names (gpt-image-1, tts-1, whisper-1, ...).
    image_model: str = Field("gemini-2.5-flash-image", pattern=r"^[A-Za-z0-9._-]+$")
    tts_model: str = Field("gemini-2.5-flash-preview-tts", pattern=r"^[A-Za-z0-9._-]+$")
    transcribe_model: str = Field("gemini-2.5-flash", pattern=r"^[A-Za-z0-9._-]+$")
    demo_mode: bool = Field(False, description="label every answer as a demo (x-gateway-demo: true); make demo")

    # Server.
    host: str = "0.0.0.0"
    port: int = Field(8000, ge=0, le=65535)
    workers: int = Field(1, ge=1)
    log_level: str = "INFO"
    shutdown_grace: float = Field(20.0, ge=0)
    header_timeout: float = Field(10.0, gt=0, description="longest a client may take to send request headers")
    keepalive_timeout: int = Field(5, ge=1, description="idle seconds before a kept-alive connection closes")
    body_timeout: float = Field(30.0, gt=0, description="longest pause while a request body arrives")
    data_dir: str = Field("data", description="writable folder: file logs and the SQLite store; empty (and no "
                          "DATABASE_URL) = no durable store")
    cors_allow_origins: StrList = Field(default_factory=lambda: ["*"])
    cors_allow_methods: StrList = Field(default_factory=lambda: ["*"])
    cors_allow_headers: StrList = Field(default_factory=lambda: ["*"])
    cors_allow_credentials: bool = False
    redis_url: str | None = None

    # Responses API store (store: true, previous_response_id, GET/DELETE /v1/responses/{id}).
    responses_ttl: float = Field(86400.0, gt=0, description="seconds a stored response stays retrievable")
    responses_max_count: int = Field(10000, ge=1, description="stored responses kept in memory, oldest dropped")
    responses_max_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="bytes of stored responses in memory; "
                                     "also the cap on one stored response in Redis")
    # Durable operator state (app/state/durable): keys, client tokens, usage history, error log.
    database_url: str | None = Field(None, description="postgresql://... for a store shared by replicas")
    database_table_prefix: str = Field("gw_", pattern=r"^[a-z][a-z0-9_]{0,30}$")
    encryption_key: str | None = Field(None, description="Fernet key(s), comma-separated; the first encrypts")
    state_poll_interval: float = Field(2.0, gt=0, description="seconds between checks for changed keys/tokens")
    usage_flush_interval: float = Field(10.0, gt=0, description="seconds between usage/error-log flushes")
    usage_retention_days: int = Field(90, ge=1)
    error_log_retention_days: int = Field(14, ge=1)

    # Chat sessions.
    valid_users_file: str = "valid_users.txt"
    valid_users: StrList = Field(default_factory=list, description="session users besides the file's")
    session_default_model: str = "gemini-2.5-flash"
    session_ttl: float = Field(1800.0, gt=0)
    session_max_per_user: int = Field(20, ge=1)
    session_max_total: int = Field(10000, ge=1)
    session_max_history: int = Field(100, ge=2, description="turns kept; oldest dropped first")
    user_rate_limit: float = Field(2.0, gt=0, description="send_message calls per second per user")
    log_messages: bool = True

    # Analytics.
    reconify_endpoint: str | None = None
    reconify_app_key: str | None = None
    reconify_api_key: str | None = None
    reconify_session_timeout: int = Field(10, ge=1)
    analytics_redact_content: bool = False
    analytics_jsonl: str | None = None
    analytics_queue_size: int = Field(10000, ge=1)
    interaction_log: str | None = "stdout"

    # Analytics delivery tuning (exporters in app/observability).
    reconify_timeout: float = Field(10.0, gt=0, description="seconds for one POST to the collector")
    reconify_max_attempts: int = Field(4, ge=1, le=20, description="tries per event on 5xx/429/timeouts")
    reconify_retry_backoff: float = Field(0.5, ge=0, description="first retry delay, doubled each time")
    reconify_retry_backoff_max: float = Field(30.0, ge=0)
    reconify_concurrency: int = Field(4, ge=1, le=64, description="POSTs in flight (one event each)")
    analytics_batch_size: int = Field(256, ge=1, description="JSON lines written per disk write")
    analytics_queue_bytes: int = Field(64 * 1024 * 1024, ge=0,
                                       description="byte budget of each exporter queue (0 = count only)")
    analytics_flush_timeout: float = Field(5.0, ge=0, description="longest final flush at shutdown")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        # A pasted list (newlines, spaces) inside one entry is several keys; a control character is refused.
        return checked_keys(_split_list(value), label="entry")

    @field_validator("allowed_tokens", "auth_token")
    @classmethod
    def _not_placeholder(cls, value: Any) -> Any:
        values = value if isinstance(value, list) else [value] if value else []
        if any(is_placeholder(v) for v in values):
            raise ValueError("is a placeholder copied from .env.example; choose your own secret")
        return value

    @field_validator("allowed_tokens", "model_search", "valid_users", "cors_allow_origins",
                     "cors_allow_methods", "cors_allow_headers", mode="before")
    @classmethod
    def _lists(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator("key_projects", "key_proxies", "key_kinds", "key_weights", "key_tiers", mode="before")
    @classmethod
    def _projects(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if text.startswith("{"):
                return orjson.loads(text)
            pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected a JSON object or key_id=project pairs separated by commas")
            return {k.strip(): v.strip() for k, v in pairs}
        return value

    @field_validator("key_models", "key_exclude_models", mode="before")
    @classmethod
    def _key_models(cls, value: Any) -> Any:
        """``key=pattern|pattern,key2=pattern`` or a JSON object of lists (or of such strings)."""
        from app.keys.key_policy import PolicyError, parse_models
        mapping = cls._projects(value)
        if not isinstance(mapping, dict):
            return mapping
        try:
            return {k: list(parse_models(v)) for k, v in mapping.items()}
        except PolicyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("key_weights", "key_tiers")
    @classmethod
    def _key_numbers(cls, value: dict[str, int], info: Any) -> dict[str, int]:
        from app.keys.key_policy import PolicyError, parse_tier, parse_weight
        parse = parse_weight if info.field_name == "key_weights" else parse_tier
        try:
            return {k: parse(v) for k, v in value.items()}
        except PolicyError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("anthropic_model_map", mode="before")
    @classmethod
    def _model_map(cls, value: Any) -> Any:
        """A JSON object (order kept) or ``pattern=model`` pairs separated by commas; empty = the defaults."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if not text:
            return list(_default_model_map())
        if text.startswith("{"):
            return list(orjson.loads(text).items())
        pairs = [p.split("=", 1) for p in text.split(",") if p.strip()]
        if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ValueError("expected a JSON object or pattern=model pairs separated by commas")
        return [(k.strip(), v.strip()) for k, v in pairs]

    @field_validator("outbound_proxy")
    @classmethod
    def _outbound_proxy(cls, value: str | None) -> str | None:
        from app.net.routes import RouteError, parse_proxy
        if value is None or not value.strip():
            return None
        try:
            return parse_proxy(value)
        except RouteError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("key_proxies")
    @classmethod
    def _key_proxies(cls, value: dict[str, str]) -> dict[str, str]:
        from app.net.routes import RouteError, parse_proxy
        try:
            return {k: parse_proxy(v) for k, v in value.items()}
        except RouteError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("key_kinds")
    @classmethod
    def _key_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        from app.net.routes import RouteError, parse_kind
        try:
            return {k: parse_kind(v) for k, v in value.items()}
        except RouteError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("base_url", "vertex_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("encryption_key")
    @classmethod
    def _encryption_key(cls, value: str | None) -> str | None:
        from app.state.durable.secrets import CipherError, KeyCipher
        try:
            KeyCipher(value)
        except CipherError as exc:
            raise ValueError(str(exc)) from None
        return value or None

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        # Duplicates would get twice the traffic and share one state id; keep the first.
        self.api_keys = list(dict.fromkeys(self.api_keys))
        # No fallback to a client token for AUTH_TOKEN: without its own secret the admin API stays closed.
        self.analytics_jsonl = self.data_path(self.analytics_jsonl)
        self.interaction_log = self.data_path(self.interaction_log)
        return self

    @model_validator(mode="after")
    def _workers(self) -> Settings:
        # Keys and tokens changed at run time reach the other workers only through the durable store.
        if self.workers > 1 and not self.data_dir and not self.database_url:
            raise ValueError("WORKERS > 1 needs DATA_DIR or DATABASE_URL: keys and client tokens changed at run "
                             "time reach the other workers through the durable store")
        return self

    def data_path(self, target: str | None) -> str | None:
        """A relative file path placed under ``DATA_DIR`` (``stdout`` and absolute paths unchanged)."""
        if not target or target == "stdout" or os.path.isabs(target):
            return target
        return os.path.join(self.data_dir, target)

    @property
    def upstream_root(self) -> str:
        """The API root without the version (``BASE_URL`` names ``.../v1beta``)."""
        return re.sub(r"/v1(beta\d*|alpha)?$", "", self.base_url)


class SettingsError(Exception):
    """A setting could not be parsed; the message names it."""


def load_settings(**overrides: Any) -> Settings:
    """Build Settings from the environment and the env file, with a readable error naming bad settings.

    ``GATEWAY_ENV_FILE`` chooses the env file (default ``.env``; empty for none).
    """
    env_file = os.environ.get("GATEWAY_ENV_FILE", ".env") or None
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"][:1]).upper() or "settings"
            problems.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid setting(s): " + "; ".join(problems)) from None
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise SettingsError(f"invalid setting: {exc}") from None
