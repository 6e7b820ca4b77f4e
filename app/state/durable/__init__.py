"""The durable operator store: keys and client tokens that persist and reach every replica, usage history,
the upstream error log. SQLite under ``DATA_DIR`` by default, PostgreSQL with ``DATABASE_URL``."""

from .engine import database_url
from .secrets import CipherError, KeyCipher, placeholder_reason
from .service import DurableState, UsageTap
from .store import AddResult, DurableStore, NotFound
from .usage import CURRENT_CALL, CallTag, UsageBuffer, token_counts

__all__ = ["CURRENT_CALL", "AddResult", "CallTag", "CipherError", "DurableState", "DurableStore", "KeyCipher",
           "NotFound", "UsageBuffer", "UsageTap", "database_url", "placeholder_reason", "token_counts"]
