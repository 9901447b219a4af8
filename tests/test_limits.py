"""The rate limiter and the login throttle on their own."""

from __future__ import annotations

from chatd.limits import LoginThrottle, TokenBucket


def test_token_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=1, burst=3)
    assert [bucket.take() for _ in range(5)] == [True, True, True, False, False]


def test_a_rate_of_zero_never_refuses() -> None:
    bucket = TokenBucket(rate=0, burst=1)
    assert all(bucket.take() for _ in range(1000))


def _throttle(**overrides: float) -> LoginThrottle:
    options = {"per_account": 2, "per_address": 100, "max_delay_s": 4, "forget_s": 600}
    options.update(overrides)
    return LoginThrottle(**options)  # type: ignore[arg-type]


def test_attempts_arriving_together_see_the_count_climb() -> None:
    throttle = _throttle()
    waits = [throttle.begin("10.0.0.1", "alice") for _ in range(8)]
    assert waits == [0, 0, 1, 2, 4, None, None, None]


def test_names_are_counted_regardless_of_case() -> None:
    throttle = _throttle(per_account=1, max_delay_s=0)
    assert throttle.begin("a", "Alice") == 0
    assert throttle.begin("b", "ALICE") is None


def test_a_success_forgives_the_account_but_not_the_address() -> None:
    throttle = _throttle(per_account=1, per_address=2, max_delay_s=0)
    throttle.begin("10.0.0.1", "alice")
    throttle.failed("10.0.0.1")  # alice: one failure, the address: one
    assert throttle.begin("10.0.0.2", "alice") is None  # alice locked
    throttle.begin("10.0.0.1", "bob")
    throttle.succeeded("bob")  # bob's right password does not clear the address
    throttle.begin("10.0.0.1", "carol")
    throttle.failed("10.0.0.1")  # the address: two of two
    assert throttle.begin("10.0.0.1", "dave") is None


def test_many_right_logins_from_one_address_at_once_pass() -> None:
    throttle = _throttle(per_address=3, max_delay_s=0)  # a class behind one NAT address
    assert [throttle.begin("nat", f"student{i}") for i in range(40)] == [0] * 40


def test_failures_are_forgotten() -> None:
    throttle = _throttle(per_account=1, max_delay_s=0, forget_s=1e-9)  # at once
    assert [throttle.begin("a", "alice") for _ in range(5)] == [0] * 5
