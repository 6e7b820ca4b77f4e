"""Settings -> the small frozen slice each part is built with: the one place a setting reaches its part.

A part takes only its slice (the type lives beside the part: ``UpstreamConfig`` in ``upstream``,
``PoolOptions`` in ``keys``, ``AnalyticsConfig`` in ``observability.pipeline``, ``SessionsConfig`` in
``services.sessions``, ``RouteConfig`` in ``routes.common``), so it cannot read settings it does not own.
``app/gateway.py`` calls these once per process; parts that take two or three plain values (the fetcher's
``FetchLimits``, the console's session signer, the durable state's intervals) get them there directly. Settings keep their names and
meanings; a slice field may be shorter where the part's own name says the rest (``ttl`` in sessions).
"""

from __future__ import annotations

from app.config import Settings
from app.keys import PoolOptions
from app.observability.pipeline import AnalyticsConfig
from app.routes.common import RouteConfig
from app.services.sessions import SessionsConfig
from app.upstream import UpstreamConfig

__all__ = ["analytics", "pool", "routes", "sessions", "upstream"]


def upstream(s: Settings) -> UpstreamConfig:
    return UpstreamConfig(base_url=s.base_url, max_retries=s.max_retries, time_out=s.time_out,
                          connect_timeout=s.connect_timeout, read_timeout=s.read_timeout,
                          connections=s.upstream_connections, probe_model=s.probe_model,
                          vertex_base_url=s.vertex_base_url)


def pool(s: Settings) -> PoolOptions:
    return PoolOptions(max_failures=s.max_failures, max_wait=s.max_wait, max_concurrent=s.max_concurrent_per_key)


def analytics(s: Settings) -> AnalyticsConfig:
    return AnalyticsConfig(
        interaction_log=s.interaction_log, log_messages=s.log_messages, analytics_jsonl=s.analytics_jsonl,
        redact_content=s.analytics_redact_content, batch_size=s.analytics_batch_size,
        queue_size=s.analytics_queue_size, queue_bytes=s.analytics_queue_bytes,
        flush_timeout=s.analytics_flush_timeout, reconify_endpoint=s.reconify_endpoint,
        reconify_app_key=s.reconify_app_key, reconify_api_key=s.reconify_api_key,
        reconify_session_timeout=s.reconify_session_timeout, reconify_timeout=s.reconify_timeout,
        reconify_max_attempts=s.reconify_max_attempts, reconify_retry_backoff=s.reconify_retry_backoff,
        reconify_retry_backoff_max=s.reconify_retry_backoff_max, reconify_concurrency=s.reconify_concurrency)


def sessions(s: Settings) -> SessionsConfig:
    return SessionsConfig(valid_users_file=s.valid_users_file, valid_users=tuple(s.valid_users),
                          default_model=s.session_default_model, ttl=s.session_ttl,
                          max_per_user=s.session_max_per_user, max_total=s.session_max_total,
                          max_history=s.session_max_history, user_rate_limit=s.user_rate_limit,
                          secrets=tuple(s.api_keys))


def routes(s: Settings) -> RouteConfig:
    return RouteConfig(max_request_body=s.max_request_body, body_timeout=s.body_timeout,
                       stream_keepalive=s.stream_keepalive, model_search=tuple(s.model_search))
