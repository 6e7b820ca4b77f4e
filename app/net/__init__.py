"""Outbound requests the gateway makes on a client's behalf (not the upstream Gemini client): SSRF-safe."""

from .addresses import is_public
from .fetch import FetchLimits, Fetched, NotFetchable, SafeFetcher, TooLarge

__all__ = ["FetchLimits", "Fetched", "NotFetchable", "SafeFetcher", "TooLarge", "is_public"]
