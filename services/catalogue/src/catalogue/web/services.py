"""Read the other services over HTTP for the operators' pages: health, metrics, runs, groups, flags.

The catalogue never reads another service's tables; what only they know comes from their APIs.
A service that does not answer is shown as such, never guessed.
"""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families


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


# The pipeline page asks the services again once its last answer is this old: a page reloaded
# in a loop must not turn into a stream of health checks on every service.
PIPELINE_TTL_S = 2.0


class ServiceClient:
    """The other services' HTTP APIs, with one shared connection pool and a short timeout."""

    def __init__(
        self,
        urls: dict[str, str],
        *,
        timeout_s: float,
        flags_ttl_s: float,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.urls = urls
        self.timeout_s = timeout_s
        self.flags_ttl_s = flags_ttl_s
        self._http = http
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
        states, runs = await asyncio.gather(asked, self.runs(runs_shown))
        found = Pipeline(
            states=list(states),
            runs=[] if isinstance(runs, str) else runs,
            runs_problem=runs if isinstance(runs, str) else None,
            taken_at=now,
        )
        self._pipeline = (time.monotonic(), found)
        return found

    async def group_times(self) -> dict[tuple[str, str], datetime]:
        """Return when grouping last changed each group."""
        times: dict[tuple[str, str], datetime] = {}
        cursor: str | None = None
        while True:
            page = await self._json(
                "grouping", "/v1/groups", limit=1000, **({"cursor": cursor} if cursor else {})
            )
            for group in page["groups"]:
                times[group["chain"], group["group_id"]] = datetime.fromisoformat(group["updated_at"])
            cursor = page["next_cursor"]
            if cursor is None:
                return times

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
