"""The scraper's background loop: resume unfinished runs, execute queued ones, schedule, re-scrape."""

import asyncio
import contextlib
import time
from collections.abc import Sequence
from datetime import datetime

import structlog

from scraper.domain.planning import Scope, Task
from scraper.fetching import FetchError, FetchStats
from scraper.repository import ScraperRepository
from scraper.service_layer.housekeeping import Keep, forget_old
from scraper.service_layer.runs import ScrapeRuns
from servicekit.clock import Clock
from servicekit.service import repeat
from servicekit.tracing import correlation_for
from servicekit.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger(__name__)


class ScrapeRunner:
    """Start runs on request or on schedule, execute them page by page, and resume them after a restart."""

    name = "scrape-runner"

    def __init__(
        self,
        *,
        runs: ScrapeRuns,
        clock: Clock,
        workers: int,
        poll_s: float,
        auto_interval_s: float = 0.0,
        fetch_stats: FetchStats | None = None,
    ) -> None:
        self.runs = runs
        self.clock = clock
        self.workers = workers
        self.poll_s = poll_s
        self.auto_interval_s = auto_interval_s
        self.fetch_stats = fetch_stats or FetchStats()
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def start_run(
        self,
        *,
        scope: Scope = "plan",
        day: int | None = None,
        chains: Sequence[str] = (),
        as_of: datetime | None = None,
        now: datetime,
    ) -> str:
        """Plan a run and queue it for the loop; return its id."""
        run_id = await self.runs.plan_run(scope=scope, day=day, chains=chains, as_of=as_of, now=now)
        self._queue.put_nowait(run_id)
        return run_id

    async def run(self, stopping: asyncio.Event) -> None:
        """Resume unfinished runs, then execute runs as they come; serve re-scrapes and schedules."""
        for unfinished in await self.runs.unfinished_runs():
            log.info("resuming scrape run", run_id=unfinished)
            self._queue.put_nowait(unfinished)
        last_auto = time.monotonic()
        while not stopping.is_set():
            run_id: str | None = None
            with contextlib.suppress(TimeoutError):
                run_id = await asyncio.wait_for(self._queue.get(), self.poll_s)
            try:
                if run_id is not None:
                    await self.execute(run_id, stopping)
                    continue
                if self.auto_interval_s and time.monotonic() - last_auto >= self.auto_interval_s:
                    last_auto = time.monotonic()
                    await self.start_run(scope="plan", now=self.clock())
                elif await self.runs.has_rescrapes():
                    await self.start_run(scope="rescrape", now=self.clock())
            except Exception as exc:
                log.error("scrape loop step failed", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(1.0)

    async def execute(self, run_id: str, stopping: asyncio.Event) -> None:
        """Fetch and stage every pending page of a run with a pool of workers, then close the run."""
        # The run's log lines carry the correlation id its events carry: one id finds both.
        with structlog.contextvars.bound_contextvars(correlation_id=str(correlation_for(run_id))):
            await self._execute(run_id, stopping)

    async def _execute(self, run_id: str, stopping: asyncio.Event) -> None:
        """Run the pages of a run (see `execute`)."""
        pending = await self.runs.pending(run_id)
        if pending is None:
            log.warning("no such scrape run", run_id=run_id)
            return
        queue: asyncio.Queue[Task] = asyncio.Queue()
        for task in pending.tasks:
            queue.put_nowait(task)
        failures: list[str] = []
        started = time.monotonic()

        async def worker() -> None:
            while not stopping.is_set():
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    page = await self.runs.fetch_page(pending.run, task)
                    # Read after the fetch: a page is observed when the shop answered.
                    await self.runs.stage_page(page, now=self.clock())
                except FetchError as exc:
                    failures.append(str(exc))
                    log.warning("page failed, left for a later resume", run_id=run_id, error=str(exc))

        await asyncio.gather(*(worker() for _ in range(self.workers)))
        if stopping.is_set() and not queue.empty():
            log.info("scrape run paused for shutdown", run_id=run_id, pages_left=queue.qsize())
            return
        status = await self.runs.finish_run(run_id, failures)
        log.info(
            "scrape run done",
            run_id=run_id,
            status=status,
            pages=len(pending.tasks) - len(failures),
            seconds=round(time.monotonic() - started, 2),
            retries=dict(self.fetch_stats.retries),
        )


class Tidier:
    """Now and then, forget runs long ended and old quarantined rows: the scraper's tables stay bounded."""

    name = "scraper-tidier"

    def __init__(
        self, *, uow: UnitOfWorkFactory[ScraperRepository], clock: Clock, keep: Keep, every_s: float
    ) -> None:
        self.uow = uow
        self.clock = clock
        self.keep = keep
        self.every_s = every_s

    async def run(self, stopping: asyncio.Event) -> None:
        """Tidy at once and then every `every_s` until stopping is set."""
        await repeat("tidying the scraper's tables", self.tidy_once, every_s=self.every_s, stopping=stopping)

    async def tidy_once(self) -> tuple[int, int]:
        """Forget what is older than kept; return how many runs and quarantined rows went."""
        return await forget_old(self.uow, now=self.clock(), keep=self.keep)
