"""Polite fetching: retries with backoff, Retry-After honoured, no retry on 404, host pauses."""

import random
import time

import httpx
import pytest

from scraper.fetching import Fetcher, FetchError, FetchPolicy, retry_after_seconds

pytestmark = pytest.mark.unit

FAST = FetchPolicy(backoff_base_s=0.001, backoff_max_s=0.01, rate_per_s=10_000, max_attempts=5)


def _fetcher(handler: httpx.MockTransport, policy: FetchPolicy = FAST) -> Fetcher:
    return Fetcher(httpx.AsyncClient(transport=handler), policy, rng=random.Random(1))


async def test_5xx_then_success_is_retried_and_counted() -> None:
    answers = iter([503, 502, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, json={"ok": status == 200})

    retried: list[str] = []
    fetcher = _fetcher(httpx.MockTransport(handler))
    fetcher.on_retry = retried.append
    assert await fetcher.get_json("http://shop.test/x") == {"ok": True}
    assert retried == ["503", "502"]
    assert fetcher.stats.requests == 3


async def test_429_waits_for_retry_after() -> None:
    answers = iter([429, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers)
        return httpx.Response(status, headers={"Retry-After": "0.3"}, json={})

    fetcher = _fetcher(httpx.MockTransport(handler))
    started = time.monotonic()
    await fetcher.get_json("http://shop.test/x")
    assert time.monotonic() - started >= 0.29
    assert fetcher.stats.retries["429"] == 1


async def test_404_is_not_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(404, json={"detail": "no such page"})

    with pytest.raises(FetchError, match="answered 404"):
        await _fetcher(httpx.MockTransport(handler)).get_json("http://shop.test/x")
    assert len(calls) == 1


async def test_retries_are_bounded() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    fetcher = _fetcher(httpx.MockTransport(handler))
    with pytest.raises(FetchError, match="failed 5 times"):
        await fetcher.get_json("http://shop.test/x")
    assert fetcher.stats.retries["network"] == 5


async def test_a_host_that_keeps_failing_is_paused() -> None:
    policy = FetchPolicy(
        backoff_base_s=0.0, rate_per_s=10_000, max_attempts=4, pause_after_failures=3, pause_s=0.3
    )
    stamps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        stamps.append(time.monotonic())
        return httpx.Response(500)

    fetcher = _fetcher(httpx.MockTransport(handler), policy)
    with pytest.raises(FetchError):
        await fetcher.get_json("http://shop.test/x")
    assert fetcher.stats.pauses == 1
    assert stamps[3] - stamps[2] >= 0.29, "the fourth try waited for the pause"


async def test_rate_limit_spaces_requests() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={})

    fetcher = _fetcher(httpx.MockTransport(handler), FetchPolicy(rate_per_s=50))
    started = time.monotonic()
    for _ in range(11):
        await fetcher.get_json("http://shop.test/x")
    assert time.monotonic() - started >= 0.19, "11 requests at 50/s take at least 0.2 s"


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("-1") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after_seconds(None) is None
