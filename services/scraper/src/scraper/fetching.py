"""Polite HTTP fetching: per-host concurrency and rate, retries with backoff, host pauses.

A site that defends itself (a challenge page instead of JSON, 403, a 429 storm) is not
hammered: the request fails at once with a SiteDefenceError naming the defence, and the
caller pauses the host.
"""

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any, Literal

import httpx
import structlog

from scraper.domain.chains import DefenceKind

log = structlog.get_logger(__name__)


class FetchError(RuntimeError):
    """A request that failed for good: a 4xx answer, or retries exhausted."""


class NotFoundError(FetchError):
    """A 404: the address is gone (for a data URL, maybe because the site was redeployed)."""


class SiteDefenceError(FetchError):
    """An answer refused as a whole because the site defends itself or changed; `kind` says which."""

    def __init__(self, kind: DefenceKind, url: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail} ({url})")
        self.kind: DefenceKind = kind
        self.url = url
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Answer:
    """A successful answer: the decoded JSON (or the text, when text was asked for) and its cookies."""

    body: Any
    cookies: dict[str, str]


def cookieless_client(user_agent: str, **options: Any) -> httpx.AsyncClient:
    """Return an HTTP client that keeps no cookies: adapters send each store's session explicitly."""
    # One client serves every store at once; a shared cookie jar would mix stores' sessions.
    jar = CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))
    return httpx.AsyncClient(headers={"User-Agent": user_agent}, cookies=jar, **options)


@dataclass(frozen=True, slots=True)
class FetchPolicy:
    """Limits and retry rules for every host."""

    concurrency: int = 8
    rate_per_s: float = 200.0
    timeout_s: float = 10.0
    connect_timeout_s: float | None = None
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
        self._timeout = httpx.Timeout(policy.timeout_s, connect=policy.connect_timeout_s or policy.timeout_s)

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

    def pause(self, url: str) -> None:
        """Hold every request to the URL's host for the policy's pause."""
        host = self._host(url)
        self.stats.pauses += 1
        host.hold_until = max(host.hold_until, time.monotonic() + self.policy.pause_s)

    async def get_json(self, url: str, params: dict[str, Any] | None = None) -> Any:
        """GET a URL and decode JSON, retrying 429, 5xx and network errors."""
        return (await self.request("GET", url, params=params)).body

    async def request(
        self,
        method: Literal["GET", "POST"],
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
        want: Literal["json", "text"] = "json",
    ) -> Answer:
        """Send a request and decode its answer, retrying 429, 5xx and network errors."""
        host = self._host(url)
        last_status: int | None = None
        for attempt in range(1, self.policy.max_attempts + 1):
            retry_after: float | None = None
            async with host.semaphore:
                await host.wait_turn()
                self.stats.requests += 1
                try:
                    response = await self.client.request(
                        method,
                        url,
                        params=params,
                        json=json_body,
                        headers=headers,
                        timeout=self._timeout,
                    )
                except httpx.TimeoutException:
                    reason = "timeout"
                except httpx.TransportError:
                    reason = "network"
                else:
                    last_status = response.status_code
                    if response.status_code < 300:
                        host.failures_in_a_row = 0
                        return Answer(_decoded(response, want), dict(response.cookies.items()))
                    if response.status_code == 429 or response.status_code >= 500:
                        reason = str(response.status_code)
                        retry_after = retry_after_seconds(response.headers.get("retry-after"))
                    elif response.status_code == 404:
                        raise NotFoundError(f"{method} {response.url} answered 404")
                    elif response.status_code == 403:
                        raise SiteDefenceError(
                            "forbidden", str(response.url), "the site answered 403 Forbidden"
                        )
                    else:
                        raise FetchError(f"{method} {response.url} answered {response.status_code}")
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
        if last_status == 429 and reason == "429":
            raise SiteDefenceError(
                "rate_limited", url, f"still 429 Too Many Requests after {self.policy.max_attempts} tries"
            )
        raise FetchError(f"{method} {url} failed {self.policy.max_attempts} times (last: {reason})")


def _decoded(response: httpx.Response, want: Literal["json", "text"]) -> Any:
    """Return the answer's text, or its JSON; an HTML page where JSON was due is a challenge page."""
    if want == "text":
        return response.text
    content_type = response.headers.get("content-type", "").lower()
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        what = (
            "an HTML page" if "html" in content_type or response.text.lstrip().startswith("<") else "no JSON"
        )
        raise SiteDefenceError(
            "challenge", str(response.url), f"answered {what} where JSON was due (a block or challenge page?)"
        ) from None
