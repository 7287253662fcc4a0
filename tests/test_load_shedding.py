"""Load shedding and fairness, on every transport: a pool connection not free within
PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS, and calls beyond PHOTOVAULT_MAX_CONCURRENT_CALLS, end
UNAVAILABLE with a RetryInfo instead of queueing; a user over PHOTOVAULT_RATE_LIMIT_PER_SECOND
gets RESOURCE_EXHAUSTED with a RetryInfo, others are unaffected, and a Redis that is down lets
calls through."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from google.rpc import code_pb2

from photovault.v1 import photo_service_pb2 as pb
from photovault_server.adapters.redis_rate_limit import RedisRateLimiter, rate_limit_key

from .support.callers import Caller, Outcome
from .support.grpc_status import status_details
from .support.redis_server import redis_server
from .support.servers import transports_with
from .support.users import new_user

TRANSPORTS = ["grpc", "connect"]


async def get_account(caller: Caller) -> Outcome:
    return await caller("GetAccount", pb.GetAccountRequest(), new_user())


def refusal(outcome: Outcome) -> tuple[int, str, timedelta]:
    """The code, ErrorInfo reason and RetryInfo delay of a failed call."""
    assert outcome.status is not None, outcome
    found = status_details(outcome.status)
    return outcome.code, found["reason"], found["retry_after"]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_no_pool_connection_within_the_acquire_timeout_is_unavailable(
    database_url: str, redis_url: str, aws_env: None, transport: str
) -> None:
    async with transports_with(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PHOTOVAULT_DB_POOL_MAX_SIZE=1,
        PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS=200,
    ) as (app, callers):
        async with app.pool.acquire():  # the only connection, held
            shed = await get_account(callers[transport])
        code, reason, retry_after = refusal(shed)
        assert code == code_pb2.UNAVAILABLE
        assert reason == "DB_POOL_EXHAUSTED"
        assert retry_after > timedelta(0)
        assert (await get_account(callers[transport])).reply is not None  # free again


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_calls_beyond_the_concurrency_cap_are_shed(
    database_url: str, redis_url: str, aws_env: None, transport: str
) -> None:
    async with transports_with(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PHOTOVAULT_MAX_CONCURRENT_CALLS=2,
        PHOTOVAULT_DB_POOL_MAX_SIZE=1,
        PHOTOVAULT_DB_ACQUIRE_TIMEOUT_MS=60_000,
    ) as (app, callers):
        # The pool's one connection is held, so admitted calls wait for it (slow calls);
        # the cap lets two of five in and sheds the rest at once.
        held = await app.pool.acquire()
        calls = [asyncio.create_task(get_account(callers[transport])) for _ in range(5)]
        try:
            first: set[asyncio.Task[Outcome]] = set()
            while len(first) < 3:
                done, _ = await asyncio.wait(
                    set(calls) - first, return_when=asyncio.FIRST_COMPLETED
                )
                first |= done
            assert app.admission.in_flight == 2
        finally:
            await app.pool.release(held)
        outcomes = await asyncio.gather(*calls)
        shed = [o for o in outcomes if o.reply is None]
        assert len(shed) == 3
        assert {refusal(o)[:2] for o in shed} == {(code_pb2.UNAVAILABLE, "OVERLOADED")}
        assert all(refusal(o)[2] > timedelta(0) for o in shed)
        assert all(c.result().reply is None for c in first)  # the shed ones answered first
        assert app.admission.in_flight == 0
        assert (await get_account(callers[transport])).reply is not None


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_user_over_the_rate_limit_is_refused_until_the_retry_delay(
    database_url: str, redis_url: str, aws_env: None, transport: str
) -> None:
    # One call per 100 s: the burst of 3 is all a user gets during the test.
    async with transports_with(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        PHOTOVAULT_RATE_LIMIT_PER_SECOND=0.01,
        PHOTOVAULT_RATE_LIMIT_BURST=3,
    ) as (_, callers):
        call, alice, bob = callers[transport], new_user(), new_user()
        request = pb.GetAccountRequest()
        for _ in range(3):
            assert (await call("GetAccount", request, alice)).reply is not None
        refused = await call("GetAccount", request, alice)
        code, reason, retry_after = refusal(refused)
        assert code == code_pb2.RESOURCE_EXHAUSTED
        assert reason == "RATE_LIMITED"
        # The next call is one emission interval (100 s) away, less the time the calls took.
        assert timedelta(seconds=90) < retry_after <= timedelta(seconds=100)
        assert (await call("GetAccount", request, bob)).reply is not None


async def test_the_bucket_is_one_key_per_user_with_a_hash_tag(
    database_url: str, redis_url: str, aws_env: None
) -> None:
    """One slot per user on a Redis Cluster, and an expiry so idle users cost nothing."""
    from redis.asyncio import Redis

    user = new_user()
    async with transports_with(
        DATABASE_URL=database_url, REDIS_URL=redis_url, PHOTOVAULT_RATE_LIMIT_PER_SECOND=0.1
    ) as (_, callers):
        assert (await callers["grpc"]("GetAccount", pb.GetAccountRequest(), user)).reply
    redis = Redis.from_url(redis_url)
    try:
        key = rate_limit_key(user.id)
        assert key == f"pv:rl:{{{user.id}}}"
        # One call of a 0.1/s bucket: 10 s to refill, long enough to be read on a loaded
        # machine (a 5/s bucket's 200 ms were gone before the read under load).
        assert 0 < await redis.pttl(key) <= 10_000
    finally:
        await redis.aclose()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_rate_limit_fails_open_when_redis_is_down(
    database_url: str, aws_env: None, transport: str
) -> None:
    with redis_server() as redis:
        async with transports_with(
            DATABASE_URL=database_url,
            REDIS_URL=redis.url,
            PHOTOVAULT_RATE_LIMIT_PER_SECOND=0.01,
            PHOTOVAULT_RATE_LIMIT_BURST=1,
        ) as (app, callers):
            call, alice = callers[transport], new_user()
            assert (await call("GetAccount", pb.GetAccountRequest(), alice)).reply is not None
            assert (await call("GetAccount", pb.GetAccountRequest(), alice)).code == (
                code_pb2.RESOURCE_EXHAUSTED
            )
            redis.stop()
            for _ in range(5):  # through failures, then the open breaker
                outcome = await call("GetAccount", pb.GetAccountRequest(), alice)
                assert outcome.reply is not None, outcome
            limiter = app.admission.rate_limiter
            assert isinstance(limiter, RedisRateLimiter)
            assert limiter.errors > 0
