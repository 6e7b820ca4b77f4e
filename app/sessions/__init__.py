"""Chat sessions for clients that keep no history: the session record, its stores and turn lease, turn ids,
the per-user rate limit, the valid-users file and the pure conversation functions. ``app.services.sessions``
puts them together.
"""

from .generation import ConfigError, parse_generation_config, parse_model_name
from .history import ModelReply, append_exchange, build_request, read_reply, user_turn
from .lease import ChatBusy, Lease, Saved
from .model import Session, TurnRecord, looks_like_chat_id, new_chat_id
from .ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter, window_for
from .redis_store import RedisSessionStore
from .store import Begun, KeyedLock, Limits, MemorySessionStore, SessionLimitReached, SessionStore, StoreUnavailable
from .turns import TurnIdError, digest, find_turn, new_turn_id, parse_turn_id
from .users import ValidUsers, parse_users

__all__ = [
    "Begun",
    "ChatBusy",
    "ConfigError",
    "KeyedLock",
    "Lease",
    "Limits",
    "MemoryRateLimiter",
    "MemorySessionStore",
    "ModelReply",
    "RateLimiter",
    "RedisRateLimiter",
    "RedisSessionStore",
    "Saved",
    "Session",
    "SessionLimitReached",
    "SessionStore",
    "StoreUnavailable",
    "TurnIdError",
    "TurnRecord",
    "ValidUsers",
    "append_exchange",
    "build_request",
    "digest",
    "find_turn",
    "looks_like_chat_id",
    "new_chat_id",
    "new_turn_id",
    "parse_generation_config",
    "parse_model_name",
    "parse_turn_id",
    "parse_users",
    "read_reply",
    "user_turn",
    "window_for",
]
