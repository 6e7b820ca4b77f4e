"""Who pays for a transient failure: the per-request ledger behind the pool's accounting rule.

A 500, 502, 504, a timeout or a reset says that *something* went wrong, not that the key did. A request that
Gemini always fails (a poison request) used to be retried on every key, charging each one a consecutive
failure until the whole pool was disabled; a slow spell did the same with read timeouts. So a transient
failure is held in the request's ``RequestAccount`` while the request runs, and charged when it ends:

* the same request then succeeds on another key: the evidence points at the failed key, which is charged
  (with evidence, see the manager's disable rule);
* the request fails *the same way* (same HTTP status, or both timeouts, or both resets) on two different
  keys: it is the request's fault. The retry loop stops at once, the upstream's error goes back to the client,
  and no key is charged. A proxied key's route failure (``proxy_*``: its proxy down, refusing, or unable to
  reach Google) is never the same way as anything: the request never reached Google, and two keys behind
  one dead proxy must not turn every request that meets them into a 502 while another route works;
* the request ends in a client error (a 400 or 404 after a 500): the request's fault, no charge;
* the request ends otherwise (retries or deadline spent, no other key to try): the first failed key is charged
  without evidence. Such charges build a key's consecutive-failure streak, but the streak disables the key only
  once another key has served a request during it (``KeyManager``), so one slow spell cannot bench the pool.

Whatever happens, one request charges at most one key, once. A 503 is never charged (Google's capacity, not
the key) and never stops the loop. The account is pure bookkeeping: the manager applies its verdict.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .classify import Outcome, OutcomeKind

__all__ = ["Charge", "RequestAccount", "countable", "signature"]


def countable(outcome: Outcome) -> bool:
    """Whether this outcome is a transient failure that may be charged to a key (every one but a 503)."""
    return outcome.kind is OutcomeKind.TRANSIENT and outcome.status != 503


def signature(outcome: Outcome) -> str | None:
    """"The same way", as a string: the HTTP status when there was an answer, else the failure's reason
    (``timeout``, ``connection_reset``, ``connection_error``, ``error:<exception>``); None for a proxied
    route's own failure (``proxy_*``), which never makes the request at fault."""
    if outcome.status:
        return f"http:{outcome.status}"
    reason = outcome.reason or "error"
    return None if reason.startswith("proxy_") else reason


@dataclass(frozen=True, slots=True)
class Charge:
    """The verdict of a finished request: charge ``key_id`` one transient failure; ``evidence`` says the same
    request succeeded on another key."""

    key_id: str
    outcome: Outcome
    evidence: bool


@dataclass(slots=True)
class RequestAccount:
    """One request's attempts: the keys tried and its countable transient failures, in order."""

    model: str
    #: The one key that may serve (it owns a resource the request names): no rotation at all.
    pinned: str | None = None
    #: The key a conversation is bound to: tried first while it is eligible, then plain rotation.
    prefer: str | None = None
    tried: set[str] = field(default_factory=set)
    failures: list[tuple[str, str | None, Outcome]] = field(default_factory=list)
    poisoned: bool = False
    settled: bool = False

    def note(self, key_id: str, outcome: Outcome) -> None:
        """Hold a countable failure; marks the request poisoned when another key already failed the same way."""
        sig = signature(outcome)
        if sig is not None and any(kid != key_id and s == sig for kid, s, _ in self.failures):
            self.poisoned = True
        self.failures.append((key_id, sig, outcome))

    def void(self) -> None:
        """The request got a definitive answer that is not a success (a client error): nothing is charged."""
        self.settled = True

    def settle(self, *, succeeded_on: str | None) -> Charge | None:
        """The one charge this request makes (or none); later calls return None."""
        if self.settled:
            return None
        self.settled = True
        if self.poisoned or not self.failures:
            return None
        if succeeded_on is not None:
            for kid, _, outcome in self.failures:
                if kid != succeeded_on:
                    return Charge(kid, outcome, True)
            return None  # it failed and then succeeded on the same key: a blip, not evidence
        kid, _, outcome = self.failures[0]
        return Charge(kid, outcome, False)
