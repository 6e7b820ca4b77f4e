"""The key pool: which Gemini API key serves the next request, and what each upstream answer does to the pool.

``classify`` turns an upstream answer into an ``Outcome``; ``KeyManager`` hands out ``Lease``s and applies the
pool action for each outcome (``accounting.py`` decides who pays for a transient failure); a ``PoolStore``
(``MemoryPoolStore`` or ``RedisPoolStore``) holds the state.
Keys are named by ``key_id`` everywhere except in the upstream request header.
"""

from .accounting import RequestAccount
from .classify import (OK_OUTCOME, Outcome, OutcomeKind, classify, classify_exception, header_safe,
                       parse_duration)
from .ids import key_id, scrub
from app.errors import NoKeyAvailable, OwnerUnavailable

from .hotmap import HotMap, MemoryHotMap, RedisHotMap, build_hot_map
from .manager import KeyManager, Lease, UnknownKey
from .options import PoolOptions
from .ownership import Owner, Ownership, tenant_of
from .quota_time import next_pacific_midnight
from .redis_store import RedisPoolStore
from .surge import SurgeDetector
from .store import Cooldown, KeyStatus, MemoryPoolStore, Pick, PoolStore

__all__ = [
    "OK_OUTCOME",
    "Cooldown",
    "HotMap",
    "MemoryHotMap",
    "Owner",
    "PoolOptions",
    "OwnerUnavailable",
    "Ownership",
    "RedisHotMap",
    "build_hot_map",
    "tenant_of",
    "KeyManager",
    "KeyStatus",
    "Lease",
    "MemoryPoolStore",
    "NoKeyAvailable",
    "Outcome",
    "OutcomeKind",
    "Pick",
    "PoolStore",
    "RequestAccount",
    "RedisPoolStore",
    "SurgeDetector",
    "UnknownKey",
    "classify",
    "classify_exception",
    "header_safe",
    "key_id",
    "next_pacific_midnight",
    "parse_duration",
    "scrub",
]
