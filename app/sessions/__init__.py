"""Chat sessions for clients that keep no history: the session record, its stores, the per-user rate limit,
the valid-users file and the pure conversation functions. ``app.services.sessions`` puts them together.
"""

from .generation import ConfigError, parse_generation_config, parse_model_name
from .history import ModelReply, append_exchange, build_request, read_reply, user_turn
from .model import Session, looks_like_chat_id, new_chat_id
from .ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, window_for
from .redis_store import RedisSessionStore
from .store import KeyedLock, Limits, MemorySessionStore, SessionLimitReached, SessionStore, StoreUnavailable
from .users import ValidUsers, parse_users

__all__ = [
    "ConfigError",
    "KeyedLock",
    "Limits",
    "MemoryRateLimiter",
    "MemorySessionStore",
    "ModelReply",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisSessionStore",
    "Session",
    "SessionLimitReached",
    "SessionStore",
    "StoreUnavailable",
    "ValidUsers",
    "append_exchange",
    "build_request",
    "looks_like_chat_id",
    "new_chat_id",
    "parse_generation_config",
    "parse_model_name",
    "parse_users",
    "read_reply",
    "user_turn",
    "window_for",
]
