"""One circuit breaker per Redis shard: a failing master, or a slot without one, opens its own
breaker and no other; the cache reports the worst state."""

from __future__ import annotations

from photovault_server.adapters.redis_cache import Breakers


def test_a_shard_failing_opens_its_own_breaker_only() -> None:
    breakers = Breakers(threshold=2, cooldown=60)
    failing, healthy = breakers.for_shard("10.0.0.1:6379"), breakers.for_shard("10.0.0.2:6379")
    assert breakers.state == "closed"
    for _ in range(2):
        assert failing.allow()
        failing.failed()
    assert not failing.allow()
    assert healthy.allow()
    assert breakers.state == "open"
    assert breakers.open_shards() == ["10.0.0.1:6379"]


def test_the_same_shard_gets_the_same_breaker() -> None:
    breakers = Breakers()
    assert breakers.for_shard("slot 42") is breakers.for_shard("slot 42")
    assert breakers.for_shard("slot 42") is not breakers.for_shard("slot 43")
