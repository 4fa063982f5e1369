"""Read the other services over HTTP for the pages: health, metrics, runs, groups, stores, flags.

The catalogue never reads another service's tables; what only they know comes from their APIs.
A service that does not answer is shown as such, never guessed.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx
from aiokafka.errors import KafkaError
from prometheus_client.parser import text_string_to_metric_families

from catalogue.web.deadletters import DeadLetter
from catalogue.web.lag import TopicLag


@dataclass(frozen=True, slots=True)
class TopicCounts:
    """One topic's message counts in one service since it started."""

    topic: str
    consumed: int = 0
    processed: int = 0
    failed: int = 0
    dead_lettered: int = 0
    failures: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ServiceState:
    """A service's readiness and its per-topic counts, or why they are unknown."""

    name: str
    url: str
    ready: bool
    checks: dict[str, bool]
    topics: list[TopicCounts]
    problem: str | None = None


_COUNTERS = {
    "pricestream_messages_consumed": "consumed",
    "pricestream_messages_processed": "processed",
    "pricestream_messages_failed": "failed",
    "pricestream_messages_dead_lettered": "dead_lettered",
}


def topic_counts(metrics_text: str) -> list[TopicCounts]:
    """Sum a service's message counters per topic from its Prometheus text; failures by reason."""
    totals: dict[str, dict[str, int]] = {}
    reasons: dict[str, dict[str, int]] = {}
    for family in text_string_to_metric_families(metrics_text):
        what = _COUNTERS.get(family.name)
        if what is None:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            topic = sample.labels["topic"]
            counts = totals.setdefault(topic, {})
            counts[what] = counts.get(what, 0) + int(sample.value)
            if what == "failed":
                by_reason = reasons.setdefault(topic, {})
                reason = sample.labels.get("reason", "unknown")
                by_reason[reason] = by_reason.get(reason, 0) + int(sample.value)
    return [
        TopicCounts(topic=topic, failures=reasons.get(topic, {}), **counts)
        for topic, counts in sorted(totals.items())
    ]


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Every other service's state and the latest scrape runs, as they were at one moment."""

    states: list[ServiceState]
    runs: list[dict[str, Any]]
    runs_problem: str | None
    taken_at: datetime
    lags: list[TopicLag] = field(default_factory=list)
    lags_problem: str | None = None
    dead_letters: dict[str, list[DeadLetter]] = field(default_factory=dict)
    dead_letters_problem: str | None = None


@dataclass(frozen=True, slots=True)
class GroupTimes:
    """When grouping last changed a group, and when it last checked a member (None: not yet)."""

    changed_at: datetime
    verified_at: datetime | None


@dataclass(frozen=True, slots=True)
class DirectoryStore:
    """A store as its chain's directory names it, from the scraper."""

    chain: str
    store_id: str
    name: str
    state: str | None
    postcode: str | None

    def matches(self, text: str) -> bool:
        """Say whether a shopper's text is in the store's name, postcode or id (any case)."""
        wanted = text.strip().casefold()
        return any(wanted in (value or "").casefold() for value in (self.name, self.postcode, self.store_id))


# The pipeline page asks the services again once its last answer is this old: a page reloaded
# in a loop must not turn into a stream of health checks on every service.
PIPELINE_TTL_S = 2.0
# Store directories change when a chain opens a store: a minute's copy serves every chooser.
DIRECTORY_TTL_S = 60.0
T = TypeVar("T")
LagReading = Callable[[], Awaitable[list[TopicLag]]]
DeadLetterReading = Callable[[], Awaitable[dict[str, list[DeadLetter]]]]


class ServiceClient:
    """The other services' HTTP APIs, with one shared connection pool and a short timeout."""

    def __init__(
        self,
        urls: dict[str, str],
        *,
        timeout_s: float,
        flags_ttl_s: float,
        http: httpx.AsyncClient | None = None,
        lags: LagReading | None = None,
        dead_letters: DeadLetterReading | None = None,
    ) -> None:
        self.urls = urls
        self.timeout_s = timeout_s
        self.flags_ttl_s = flags_ttl_s
        self._http = http
        self._lags = lags
        self._dead_letters = dead_letters
        self._directory: dict[str, tuple[float, list[DirectoryStore]]] = {}
        self._flags: dict[str, tuple[float, dict[tuple[str, str], str]]] = {}
        self._pipeline: tuple[float, Pipeline] | None = None
        self._refresh: asyncio.Task[Pipeline] | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        """Return the client, made on first use inside the running loop."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout_s)
        return self._http

    async def _json(self, service: str, path: str, **params: Any) -> Any:
        response = await self.http.get(f"{self.urls[service]}{path}", params=params)
        response.raise_for_status()
        return response.json()

    async def state(self, name: str) -> ServiceState:
        """Return a service's readiness (503 still carries its checks) and its message counts."""
        url = self.urls[name]
        try:
            ready, metrics = await asyncio.gather(
                self.http.get(f"{url}/health/ready"), self.http.get(f"{url}/metrics")
            )
            body = ready.json()
            return ServiceState(
                name=name,
                url=url,
                ready=ready.status_code == 200,
                checks={k: bool(v) for k, v in body.get("checks", {}).items()},
                topics=topic_counts(metrics.text),
            )
        except (httpx.HTTPError, ValueError) as exc:
            return ServiceState(name, url, False, {}, [], problem=f"{type(exc).__name__}: {exc}".rstrip(": "))

    async def runs(self, limit: int) -> list[dict[str, Any]] | str:
        """Return the scraper's latest runs with their progress, newest first; or why there are none."""
        try:
            runs: list[dict[str, Any]] = (await self._json("scraper", "/v1/runs", limit=limit))["runs"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            return f"the scraper did not answer ({type(exc).__name__})"
        for run in runs:
            run["started_at"] = datetime.fromisoformat(run["started_at"])
            run["finished_at"] = (
                datetime.fromisoformat(run["finished_at"]) if run.get("finished_at") else None
            )
        return runs

    async def pipeline(self, *, runs_shown: int, now: datetime) -> Pipeline:
        """Return the services' state: the last answer at once (asking anew behind it when it is
        seconds old), so a page never waits on the slowest service; the first page waits once.
        """
        if self._pipeline is None:
            return await self._ask_pipeline(runs_shown, now)
        taken, found = self._pipeline
        stale = time.monotonic() - taken >= PIPELINE_TTL_S
        if stale and (self._refresh is None or self._refresh.done()):
            self._refresh = asyncio.create_task(self._ask_pipeline(runs_shown, now))
        return found

    async def _ask_pipeline(self, runs_shown: int, now: datetime) -> Pipeline:
        """Ask every service at once: the slowest answer sets the time."""
        asked = asyncio.gather(*(self.state(name) for name in self.urls))
        states, runs, lags, letters = await asyncio.gather(
            asked, self.runs(runs_shown), self._from_broker(self._lags), self._from_broker(self._dead_letters)
        )
        found = Pipeline(
            states=list(states),
            runs=[] if isinstance(runs, str) else runs,
            runs_problem=runs if isinstance(runs, str) else None,
            taken_at=now,
            lags=[] if isinstance(lags, str) else lags,
            lags_problem=lags if isinstance(lags, str) else None,
            dead_letters={} if isinstance(letters, str) else letters,
            dead_letters_problem=letters if isinstance(letters, str) else None,
        )
        self._pipeline = (time.monotonic(), found)
        return found

    @staticmethod
    async def _from_broker(read: Callable[[], Awaitable[T]] | None) -> T | str:
        """Return what a reading of the broker found; or why it is unknown."""
        if read is None:
            return "no broker to ask"
        try:
            return await read()
        except (TimeoutError, OSError, KafkaError) as exc:
            return f"the broker did not answer ({type(exc).__name__})"

    async def group_times(self) -> dict[tuple[str, str], GroupTimes]:
        """Return when grouping last changed each group and last verified one of its members."""
        times: dict[tuple[str, str], GroupTimes] = {}
        cursor: str | None = None
        while True:
            page = await self._json(
                "grouping", "/v1/groups", limit=1000, **({"cursor": cursor} if cursor else {})
            )
            for group in page["groups"]:
                verified = group.get("verified_at")
                times[group["chain"], group["group_id"]] = GroupTimes(
                    changed_at=datetime.fromisoformat(group["updated_at"]),
                    verified_at=datetime.fromisoformat(verified) if verified else None,
                )
            cursor = page["next_cursor"]
            if cursor is None:
                return times

    async def directory(self, chain: str) -> list[DirectoryStore]:
        """Return a chain's store directory (names, postcodes) from the scraper, kept a minute."""
        cached = self._directory.get(chain)
        if cached is not None and time.monotonic() - cached[0] < DIRECTORY_TTL_S:
            return cached[1]
        body = await self._json("scraper", "/v1/stores", chain=chain)
        stores = [
            DirectoryStore(s["chain"], s["store_id"], s["name"], s.get("state"), s.get("postcode"))
            for s in body["stores"]
        ]
        self._directory[chain] = (time.monotonic(), stores)
        return stores

    async def grouping_stats(self) -> dict[str, Any]:
        """Return grouping's counts: stores, groups, prices held versus answerable."""
        stats: dict[str, Any] = await self._json("grouping", "/v1/stats")
        return stats

    async def illusory(self, chain: str) -> dict[tuple[str, str], str]:
        """Return a chain's prices (store, sku) whose shown discount bargains judged illusory, and why.

        Kept a few seconds, so a shopper browsing product after product asks the bargains
        service once.
        """
        cached = self._flags.get(chain)
        if cached is not None and time.monotonic() - cached[0] < self.flags_ttl_s:
            return cached[1]
        body = await self._json("bargains", "/v1/flags", chain=chain, kind="illusory", limit=10_000)
        flagged = {(flag["store_id"], flag["sku"]): flag["reason"] for flag in body["flags"]}
        self._flags[chain] = (time.monotonic(), flagged)
        return flagged
