"""The one table that turns an upstream answer into an outcome class.

Every upstream answer is classified here exactly once; the key pool (``manager.py``) and the retry loop act on
the class, never on raw statuses. Keeping the table in one pure module means a recorded error body is a
complete test of the decision.

Decisions beyond docs/architecture.md's table:

* A 429 is QUOTA_EXHAUSTED when any ``QuotaFailure`` violation has ``PerDay`` in its ``quotaId``; with no
  quota id at all, a message that says "per day" counts too. A daily-quota 429 still carries a short
  ``RetryInfo``, so the window is never inferred from the delay.
* A 429 for depleted prepaid credits is QUOTA_EXHAUSTED (reason ``PREPAYMENT_CREDITS_DEPLETED``): it will not
  clear within a minute, so hot-retrying the key is wasted; cooling it until Pacific midnight costs one probe
  request per model per day. Disabling it would flap, since the no-quota prober call still succeeds.
* Every other 429 (per-minute, tokens-per-minute, ``MODEL_CAPACITY_EXHAUSTED``, no details) is RATE_LIMITED.
* A 403 whose message is about access to a *resource* ("You do not have permission to access the File …",
  cached contents, tuned models) is CLIENT_ERROR, not KEY_INVALID: such resources belong to one project, and
  letting a client's bad reference disable keys would let any client empty the pool.
* ``retry_after`` is the larger of ``RetryInfo.retryDelay`` and the message's "Please retry in 58.2s.": the
  detail is rounded down to whole seconds, the message is precise, and retrying early only earns another 429.
* 1xx/3xx and status 0 are TRANSIENT: the upstream did not give a usable answer.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Any

from app.gemini.errors import GoogleError, parse_duration, parse_error

__all__ = ["OK_OUTCOME", "Outcome", "OutcomeKind", "classify", "classify_exception", "header_safe",
           "parse_duration"]


class OutcomeKind(enum.Enum):
    """What the upstream answer says about the key; values are stable strings for metrics and the store."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXHAUSTED = "quota_exhausted"
    KEY_INVALID = "key_invalid"
    CLIENT_ERROR = "client_error"
    TRANSIENT = "transient"


_RETRYABLE = frozenset(
    {OutcomeKind.RATE_LIMITED, OutcomeKind.QUOTA_EXHAUSTED, OutcomeKind.KEY_INVALID, OutcomeKind.TRANSIENT}
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """A classified upstream answer: the class, plus what the pool needs to act on it."""

    kind: OutcomeKind
    status: int
    retry_after: float | None = None
    reason: str | None = None

    def retryable(self) -> bool:
        """Whether another attempt (on another key, or after a backoff) can succeed."""
        return self.kind in _RETRYABLE


OK_OUTCOME = Outcome(OutcomeKind.OK, 200)

_KEY_INVALID_REASONS = frozenset(
    {
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_ANDROID_APP_BLOCKED",
        "API_KEY_IOS_APP_BLOCKED",
        "SERVICE_DISABLED",
        "CONSUMER_SUSPENDED",
        "CONSUMER_INVALID",
        "BILLING_DISABLED",
        "ACCESS_TOKEN_TYPE_UNSUPPORTED",
    }
)
_KEY_INVALID_MESSAGES = ("api key not valid", "api key not found", "api key expired")
_RESOURCE_PERMISSION_RE = re.compile(
    r"permission to access (?:the )?(?:file|cached ?content|batch|tuned ?model|corpus|document)"
    r"|cached ?content not found", re.IGNORECASE
)
_PREPAID_RE = re.compile(r"prepa(?:id|yment) credits? (?:are |is |have been )?(?:depleted|exhausted)", re.I)
def _classify_429(parsed: GoogleError) -> Outcome:
    retry_after = parsed.retry_after
    daily = parsed.daily_quota
    if daily is not None:
        return Outcome(OutcomeKind.QUOTA_EXHAUSTED, 429, retry_after, daily)
    reason = (
        parsed.quota_ids[0]
        if parsed.quota_ids
        else (parsed.reasons[0] if parsed.reasons else parsed.status or "RESOURCE_EXHAUSTED")
    )
    return Outcome(OutcomeKind.RATE_LIMITED, 429, retry_after, reason)


def _key_reason(parsed: GoogleError) -> str | None:
    for reason in parsed.reasons:
        if reason in _KEY_INVALID_REASONS:
            return reason
    lowered = parsed.message.lower()
    if any(text in lowered for text in _KEY_INVALID_MESSAGES):
        return "API_KEY_INVALID"
    return None


def _status_name(parsed: GoogleError, status: int) -> str:
    return parsed.status or f"HTTP_{status}"


def classify(status: int, body: bytes | str | dict[str, Any] | list[Any] | None) -> Outcome:
    """Classify one upstream answer (status + error body, raw or parsed; garbage tolerated)."""
    if 200 <= status < 300:
        return OK_OUTCOME
    parsed = parse_error(body)
    if status == 429:
        return _classify_429(parsed)
    if status == 401:
        return Outcome(OutcomeKind.KEY_INVALID, status, None, _key_reason(parsed) or _status_name(parsed, status))
    if status == 403:
        if _RESOURCE_PERMISSION_RE.search(parsed.message) and _key_reason(parsed) is None:
            return Outcome(OutcomeKind.CLIENT_ERROR, status, None, "RESOURCE_PERMISSION_DENIED")
        return Outcome(OutcomeKind.KEY_INVALID, status, None, _key_reason(parsed) or _status_name(parsed, status))
    if status == 400:
        key_reason = _key_reason(parsed)
        if key_reason is not None:
            return Outcome(OutcomeKind.KEY_INVALID, status, None, key_reason)
        return Outcome(OutcomeKind.CLIENT_ERROR, status, None, _status_name(parsed, status))
    if status == 408 or status >= 500 or status < 200 or 300 <= status < 400:
        return Outcome(OutcomeKind.TRANSIENT, status, parsed.retry_after, _status_name(parsed, status))
    return Outcome(OutcomeKind.CLIENT_ERROR, status, None, _status_name(parsed, status))


_CANCELLED = Outcome(OutcomeKind.CLIENT_ERROR, 0, None, "cancelled")


_KEY_NOT_A_HEADER = Outcome(OutcomeKind.KEY_INVALID, 0, None, "KEY_NOT_A_HEADER_VALUE")


def header_safe(key: str) -> bool:
    """Whether ``key`` can travel as an HTTP header value as is: printable ASCII, no whitespace."""
    return all("!" <= c <= "~" for c in key)


def classify_exception(exc: BaseException, key: str | None = None) -> Outcome:
    """Classify a failure that produced no HTTP answer (timeout, refused, reset, TLS, or any other exception
    the transport raised, e.g. aiohttp's ``ValueError`` for a header with a newline).

    Matches on class names along the MRO so that this module needs neither aiohttp nor httpx. A cancellation
    (client went away) is not the key's fault: it comes back as CLIENT_ERROR so the pool does nothing. When
    ``key`` (the pool key the request carried) cannot be a header value, the key is what failed: KEY_INVALID,
    so the pool disables it instead of failing every N-th request. Anything else unexpected is TRANSIENT,
    which the request's account charges to no key when it happens the same way on two keys.
    """
    names = [cls.__name__ for cls in type(exc).__mro__]
    if "CancelledError" in names:
        return _CANCELLED
    if key is not None and not header_safe(key):
        return _KEY_NOT_A_HEADER
    if any("Timeout" in name for name in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "timeout")
    if any(n in ("ServerDisconnectedError", "RemoteProtocolError", "ConnectionResetError", "BrokenPipeError",
                 "ClientPayloadError", "ReadError", "IncompleteRead") for n in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "connection_reset")
    if any("Connect" in name or name == "OSError" for name in names):
        return Outcome(OutcomeKind.TRANSIENT, 0, None, "connection_error")
    return Outcome(OutcomeKind.TRANSIENT, 0, None, f"error:{type(exc).__name__}")
