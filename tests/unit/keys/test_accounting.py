"""RequestAccount: which key (if any) one request's transient failures are charged to."""

from __future__ import annotations

from app.keys import Outcome, OutcomeKind, RequestAccount
from app.keys.accounting import countable, signature

E500 = Outcome(OutcomeKind.TRANSIENT, 500, None, "INTERNAL")
E502 = Outcome(OutcomeKind.TRANSIENT, 502, None, "BAD_GATEWAY")
E503 = Outcome(OutcomeKind.TRANSIENT, 503, None, "UNAVAILABLE")
TIMEOUT = Outcome(OutcomeKind.TRANSIENT, 0, None, "timeout")
RESET = Outcome(OutcomeKind.TRANSIENT, 0, None, "connection_reset")


def test_what_counts_and_what_is_the_same_way() -> None:
    assert countable(E500) and countable(TIMEOUT)
    assert not countable(E503)  # Google's capacity: never a key's fault
    assert not countable(Outcome(OutcomeKind.RATE_LIMITED, 429))
    assert signature(E500) == signature(Outcome(OutcomeKind.TRANSIENT, 500, None, "other text"))
    assert len({signature(o) for o in (E500, E502, TIMEOUT, RESET)}) == 4


def test_same_way_on_two_keys_is_the_requests_fault() -> None:
    account = RequestAccount("m")
    account.note("k1", E500)
    assert not account.poisoned
    account.note("k2", E500)
    assert account.poisoned
    assert account.settle(succeeded_on=None) is None
    assert account.settle(succeeded_on="k3") is None  # settled once


def test_same_key_twice_is_not_a_second_opinion() -> None:
    account = RequestAccount("m")
    account.note("k1", TIMEOUT)
    account.note("k1", TIMEOUT)
    assert not account.poisoned
    charge = account.settle(succeeded_on=None)
    assert charge is not None and charge.key_id == "k1" and not charge.evidence


def test_success_elsewhere_charges_the_first_failed_key_only() -> None:
    account = RequestAccount("m")
    account.note("k1", E500)
    account.note("k2", TIMEOUT)  # a different way: keep trying
    assert not account.poisoned
    charge = account.settle(succeeded_on="k3")
    assert charge is not None and (charge.key_id, charge.evidence, charge.outcome) == ("k1", True, E500)


def test_failure_then_success_on_the_same_key_charges_nobody() -> None:
    account = RequestAccount("m")
    account.note("k1", RESET)
    assert account.settle(succeeded_on="k1") is None


def test_a_client_error_ending_voids_the_account() -> None:
    account = RequestAccount("m")
    account.note("k1", E500)
    account.void()
    assert account.settle(succeeded_on=None) is None


def test_nothing_failed_nothing_charged() -> None:
    assert RequestAccount("m").settle(succeeded_on="k1") is None


def test_a_proxied_routes_own_failure_is_never_the_requests_fault() -> None:
    # Two keys behind one dead proxy: the request never reached Google, so it goes on to another route, and
    # the first key is charged when that route serves it.
    dead = Outcome(OutcomeKind.TRANSIENT, 0, None, "proxy_connection_error")
    account = RequestAccount("m")
    account.note("k1", dead)
    account.note("k2", dead)
    account.note("k3", Outcome(OutcomeKind.TRANSIENT, 0, None, "proxy_auth_required"))
    assert not account.poisoned and signature(dead) is None
    charge = account.settle(succeeded_on="k4")
    assert charge is not None and charge.key_id == "k1" and charge.evidence
