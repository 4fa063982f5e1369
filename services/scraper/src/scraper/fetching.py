"""Polite HTTP fetching: per-host concurrency and rate, retries with backoff, host pauses."""

import asyncio
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)


class FetchError(RuntimeError):
    """A request that failed for good: a 4xx answer, or retries exhausted."""


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits and retry rules for every host."""

    concurrency: int = 8
    rate_per_s: float = 200.0
    timeout_s: float = 10.0
    max_attempts: int = 8
    backoff_base_s: float = 0.1
    backoff_max_s: float = 10.0
    pause_after_failures: int = 20
    pause_s: float = 30.0


@dataclass
class _Host:
    """Per-host state: a concurrency gate, the next free request slot, failure streak."""

    semaphore: asyncio.Semaphore
    interval_s: float
    next_slot: float = 0.0
    hold_until: float = 0.0
    failures_in_a_row: int = 0

    async def wait_turn(self) -> None:
        """Wait for a pause to end and for the host's next request slot."""
        now = time.monotonic()
        slot = max(now, self.next_slot, self.hold_until)
        self.next_slot = slot + self.interval_s
        if slot > now:
            await asyncio.sleep(slot - now)


@dataclass
class FetchStats:
    """Counts for logs, metrics and benchmarks."""

    requests: int = 0
    retries: Counter[str] = field(default_factory=Counter)
    pauses: int = 0


def retry_after_seconds(value: str | None) -> float | None:
    """Parse a Retry-After header given in seconds (HTTP dates are treated as absent)."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class Fetcher:
    """GET JSON from shops without hammering them."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        policy: FetchPolicy,
        *,
        rng: random.Random | None = None,
        on_retry: Callable[[str], None] = lambda reason: None,
    ) -> None:
        self.client = client
        self.policy = policy
        self.on_retry = on_retry
        self.stats = FetchStats()
        self._hosts: dict[str, _Host] = {}
        self._rng = rng or random.Random()

    def _host(self, url: str) -> _Host:
        host = httpx.URL(url).netloc.decode()
        if host not in self._hosts:
            self._hosts[host] = _Host(
                asyncio.Semaphore(self.policy.concurrency), 1.0 / self.policy.rate_per_s
            )
        return self._hosts[host]

    def _backoff(self, attempt: int) -> float:
        """Full jitter: a random wait up to an exponentially growing cap."""
        cap = min(self.policy.backoff_max_s, self.policy.backoff_base_s * 2 ** (attempt - 1))
        return self._rng.uniform(0, cap)

    async def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """GET a URL and decode JSON, retrying 429, 5xx and network errors."""
        host = self._host(url)
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after: float | None = None
            async with host.semaphore:
                await host.wait_turn()
                self.stats.requests += 1
                try:
                    response = await self.client.get(url, params=params, timeout=self.policy.timeout_s)
                except httpx.TimeoutException:
                    reason = "timeout"
                except httpx.TransportError:
                    reason = "network"
                else:
                    if response.status_code < 300:
                        host.failures_in_a_row = 0
                        return response.json()
                    if response.status_code == 429 or response.status_code >= 500:
                        reason = str(response.status_code)
                        retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    else:
                        raise FetchError(f"GET {response.url} answered {response.status_code}")
            self.stats.retries[reason] += 1
            self.on_retry(reason)
            host.failures_in_a_row += 1
            if attempt == self.policy.max_attempts:
                break
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            if retry_after is not None:
                # The shop asked everyone to wait, not just this request.
                host.hold_until = max(host.hold_until, time.monotonic() + retry_after)
            if host.failures_in_a_row >= self.policy.pause_after_failures:
                self.stats.pauses += 1
                host.hold_until = max(host.hold_until, time.monotonic() + self.policy.pause_s)
                host.failures_in_a_row = 0
                log.warning("host keeps failing, pausing it", url=url, pause_s=self.policy.pause_s)
            await asyncio.sleep(delay)
        raise FetchError(f"GET {url} failed {self.policy.max_attempts} times (last: {reason})")
