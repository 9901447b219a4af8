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
    throttle.begin("10.0.0.1", "alice")  # a failure
    throttle.begin("10.0.0.1", "bob")
    throttle.succeeded("10.0.0.1", "bob")  # bob's right password
    assert throttle.begin("10.0.0.2", "alice") is None  # alice still locked
    assert throttle.begin("10.0.0.1", "carol") == 0  # the address is at 1 of 2 ...
    assert throttle.begin("10.0.0.1", "dave") is None  # ... and now at its limit


def test_failures_are_forgotten() -> None:
    throttle = _throttle(per_account=1, max_delay_s=0, forget_s=1e-9)  # at once
    assert [throttle.begin("a", "alice") for _ in range(5)] == [0] * 5
