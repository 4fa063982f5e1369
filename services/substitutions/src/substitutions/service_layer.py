"""The substitutions service's use cases: the catalogue in memory, kept in step with the database.

The model is loaded once when the service starts, the catalogue is loaded from the
database (names encoded only when their embedding is not cached), and then each observed
product updates it incrementally. A rebuild recomputes every list in a worker thread,
reporting progress, once the observations' open units of work have ended (new ones wait).
Every write goes through a unit of work; the catalogue never runs ahead of what the database
committed.

What the catalogue learns from its products (house brands, the words that tell items apart)
is learned when it loads: a catalogue grown to twice the products it learned from is rebuilt
in the background, so that a service started empty learns them too, and so is one that grew
at all once no product has come for a while.
"""

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

import structlog

from contracts import Event
from contracts.events import SubstitutionsChanged
from contracts.events.v1 import Substitute, SubstitutionsChangedPayload
from servicekit.clock import Clock, utc_now
from servicekit.unit_of_work import UnitOfWorkFactory, Work
from substitutions.domain.catalogue import Catalogue, Description, ProductKey, SubstituteRow
from substitutions.domain.matching import Policy
from substitutions.embeddings import Encoder, Vectors
from substitutions.repository import SubstitutionsRepository

log = structlog.get_logger(__name__)

PRODUCER = "substitutions"


@dataclass(slots=True)
class RebuildProgress:
    """Where the latest rebuild stands, as the API shows it."""

    status: Literal["idle", "running", "done", "failed"] = "idle"
    phase: str = ""
    done: int = 0
    total: int = 0
    products: int = 0
    encoded: int = 0
    changed: int = 0
    seconds: float = 0.0
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the progress as JSON-ready fields."""
        return asdict(self)


class Matcher:
    """Hold the catalogue, answer observations incrementally, and rebuild on demand."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory[SubstitutionsRepository],
        encoder_factory: Callable[[], Encoder],
        policy: Policy,
        relearn_from: int = 100,
        clock: Clock = utc_now,
    ) -> None:
        self._uow = uow
        self.policy = policy
        self.relearn_from = relearn_from
        """The fewest products a catalogue learns again from once it has doubled (0: never)."""
        self.learned_from = 0
        """How many products the catalogue's house brands and distinguishing words were learned from."""
        self._clock = clock
        self._background: set[asyncio.Task[RebuildProgress]] = set()
        self._open = 0
        """Units of work of observations open: one may hold a product its database has not committed."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._gate = asyncio.Event()
        """Cleared while a rebuild waits for the open units of work to end, and while it runs."""
        self._gate.set()
        self._quiet_since = time.monotonic()
        self._encoder_factory = encoder_factory
        self.encoder: Encoder | None = None
        self.catalogue: Catalogue | None = None
        # Set while the catalogue holds a change whose unit of work has not committed yet.
        self._uncommitted = False
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.progress = RebuildProgress()
        self.observed = 0
        self.timings_ms: list[float] = []

    def __len__(self) -> int:
        """Return how many products the catalogue holds."""
        return len(self.catalogue) if self.catalogue else 0

    async def start(self) -> None:
        """Load the model, then the catalogue from the database with its stored lists."""
        started = time.perf_counter()
        if self.encoder is None:
            self.encoder = await asyncio.to_thread(self._encoder_factory)
        async with self.lock, self._uow() as work:
            await self._reload(work.repo)
        self.ready.set()
        log.info("catalogue loaded", products=len(self), seconds=round(time.perf_counter() - started, 2))

    @contextlib.asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Work[SubstitutionsRepository]]:
        """Open the unit of work of observations: the catalogue counts as committed only if it commits.

        Handlers take this as their unit-of-work factory; `observe` in any other unit of work
        leaves the catalogue to be reloaded before the next observation.
        """
        await self._gate.wait()
        self._open += 1
        self._idle.clear()
        try:
            async with self._uow() as work:
                yield work
            self._uncommitted = False
        finally:
            self._open -= 1
            if not self._open:
                self._idle.set()
            self._quiet_since = time.monotonic()
        if len(self) >= 2 * self.learned_from:
            self._relearn()

    def relearn_if_quiet(self, *, quiet_s: float) -> bool:
        """Learn from the products that came since the last learning, once none has come for `quiet_s`.

        A bulk load ends between two doublings: this learns from its tail.
        """
        quiet = self._open == 0 and time.monotonic() - self._quiet_since >= quiet_s
        return quiet and len(self) > self.learned_from and self._relearn()

    def _relearn(self) -> bool:
        """Start a rebuild, which learns from every product held; False if too few or one runs.

        Growth starts one each time the catalogue doubles, which bounds their total work by twice
        one rebuild's.
        """
        held = len(self)
        if not self.relearn_from or held < self.relearn_from:
            return False
        progress = self.begin_rebuild()
        if progress is None:
            return False
        log.info("learning again from a grown catalogue", learned_from=self.learned_from, products=held)
        self.learned_from = held  # until the rebuild loads: one rebuild per doubling
        task = asyncio.create_task(self.rebuild(progress, now=self._clock()))
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return True

    async def settled(self) -> None:
        """Wait for the rebuilds the catalogue's growth has started."""
        await asyncio.gather(*self._background)

    async def stop(self) -> None:
        """Cancel the rebuilds growth started: one cancelled commits nothing, its lists stay as stored."""
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self.progress.status == "running":  # cancelled before it began
            self.progress.status, self.progress.error = "failed", "cancelled: the service stopped"

    async def observe(
        self,
        work: Work[SubstitutionsRepository],
        *,
        description: Description,
        observed_at: datetime,
        now: datetime,
    ) -> int:
        """Store a product's description; if it changed, update the lists it affects. Return events staged."""
        await self.ready.wait()
        if not await work.repo.upsert_product(description=description, observed_at=observed_at):
            return 0
        async with self.lock:
            if self._uncommitted:
                # The last observation changed the catalogue, then its unit of work failed (the
                # database went away): the catalogue must not run ahead of what was stored.
                log.warning("reloading the catalogue: the last observation did not commit")
                await self._reload(work.repo)
            catalogue, encoder = self._parts()
            started = time.perf_counter()
            product = catalogue.parse(description)
            vector = (await self._vectors(work.repo, encoder, [product.kind]))[product.kind]
            self._uncommitted = True
            changed = catalogue.observe(product, vector)
            await work.repo.save_lists(lists=changed, computed_at=now)
            work.publish(_events(changed))
            self.observed += 1
            self._time(time.perf_counter() - started)
        return len(changed)

    def begin_rebuild(self) -> RebuildProgress | None:
        """Mark a rebuild as started and return its progress, or None when one is running already."""
        if self.progress.status == "running":
            return None
        self.progress = RebuildProgress(status="running", phase="queued")
        return self.progress

    async def rebuild(self, progress: RebuildProgress, *, now: datetime) -> RebuildProgress:
        """Recompute every product's substitutes from the database; publish the lists that changed."""
        await self.ready.wait()
        progress.phase = "loading"
        started = time.perf_counter()
        # New observations wait at the gate, and those open end first: a product one of them
        # stored but has not committed yet would be missing from what the rebuild loads.
        self._gate.clear()
        try:
            await self._idle.wait()
            async with self.lock:
                progress.changed = await self._rebuild(progress, now=now)
            progress.status, progress.phase = "done", "done"
        except asyncio.CancelledError:
            progress.status, progress.error = "failed", "cancelled: the service stopped"
            raise
        except Exception as exc:
            progress.status, progress.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("rebuild failed")
        finally:
            self._gate.set()
        progress.seconds = round(time.perf_counter() - started, 3)
        log.info("rebuild finished", **progress.as_dict())
        return progress

    def stats(self) -> dict[str, Any]:
        """Describe the matcher: products held, incremental timings, last rebuild."""
        timings = sorted(self.timings_ms)
        return {
            "ready": self.ready.is_set(),
            "model": self.encoder.model_name if self.encoder else None,
            "products": len(self),
            "observed": self.observed,
            "observe_ms_p50": timings[len(timings) // 2] if timings else None,
            "observe_ms_p99": timings[int(len(timings) * 0.99)] if timings else None,
            "rebuild": self.progress.as_dict(),
        }

    async def _rebuild(self, progress: RebuildProgress, *, now: datetime) -> int:
        """Load, match every product in a thread, store and publish the changed lists; return how many."""
        async with self._uow() as work:
            catalogue, progress.encoded = await self._load(work.repo, progress)
        progress.phase, progress.done, progress.total = "matching", 0, len(catalogue)

        def advance(count: int) -> None:
            progress.done += count

        computed = await asyncio.to_thread(catalogue.rebuild, progress=advance)
        progress.phase = "publishing"
        async with self._uow() as work:
            stored = await work.repo.lists()
            changed = {key: rows for key, rows in computed.items() if stored.get(key) != rows}
            await work.repo.save_lists(lists=changed, computed_at=now)
            work.publish(_events(changed))
        self.catalogue = catalogue
        return len(changed)

    async def _reload(self, repo: SubstitutionsRepository) -> None:
        """Load the catalogue and its stored lists as the database has them."""
        catalogue, _ = await self._load(repo)
        catalogue.adopt(await repo.lists())
        self.catalogue, self._uncommitted = catalogue, False

    async def _load(
        self, repo: SubstitutionsRepository, progress: RebuildProgress | None = None
    ) -> tuple[Catalogue, int]:
        """Build a catalogue of every stored product, encoding the names the cache lacks."""
        encoder = self._encoder()
        descriptions = await repo.products()
        catalogue = Catalogue.learning(descriptions, dimensions=encoder.dimensions, policy=self.policy)
        self.learned_from = len(descriptions)
        products = [catalogue.parse(description) for description in descriptions]
        kinds = sorted({product.kind for product in products})
        cached = await repo.cached_vectors(model=encoder.model_name, texts=kinds)
        missing = [kind for kind in kinds if kind not in cached]
        if progress is not None:
            progress.phase, progress.products, progress.total = "encoding", len(products), len(missing)
        vectors = {**cached, **await self._encode(repo, encoder, missing, progress)}
        catalogue.load(products, (vectors[product.kind] for product in products))
        return catalogue, len(missing)

    async def _vectors(
        self, repo: SubstitutionsRepository, encoder: Encoder, texts: Sequence[str]
    ) -> dict[str, Vectors]:
        """Return embeddings of texts from the cache, encoding and caching the missing ones."""
        found = await repo.cached_vectors(model=encoder.model_name, texts=texts)
        missing = [text for text in texts if text not in found]
        return found | await self._encode(repo, encoder, missing, None)

    async def _encode(
        self,
        repo: SubstitutionsRepository,
        encoder: Encoder,
        texts: Sequence[str],
        progress: RebuildProgress | None,
        *,
        batch: int = 1024,
    ) -> dict[str, Vectors]:
        """Encode texts and cache them; large batches go to a thread so the service keeps answering."""
        new: dict[str, Vectors] = {}
        for start in range(0, len(texts), batch):
            chunk = list(texts[start : start + batch])
            encoded = (
                await asyncio.to_thread(encoder.encode, chunk) if len(chunk) > 8 else encoder.encode(chunk)
            )
            new |= dict(zip(chunk, encoded, strict=True))
            if progress is not None:
                progress.done += len(chunk)
        await repo.store_vectors(model=encoder.model_name, vectors=new)
        return new

    def _parts(self) -> tuple[Catalogue, Encoder]:
        """Return the loaded catalogue and encoder."""
        if self.catalogue is None:
            raise RuntimeError("the matcher has not started")
        return self.catalogue, self._encoder()

    def _encoder(self) -> Encoder:
        """Return the loaded encoder."""
        if self.encoder is None:
            raise RuntimeError("the matcher has not loaded its model")
        return self.encoder

    def _time(self, seconds: float) -> None:
        """Keep the latest incremental timings for the stats."""
        self.timings_ms.append(round(seconds * 1000, 3))
        if len(self.timings_ms) > 10_000:
            del self.timings_ms[:5_000]


def _events(changed: Mapping[ProductKey, list[SubstituteRow]]) -> Iterable[Event]:
    """Make one SubstitutionsChanged per product whose list changed."""
    for (chain, sku), rows in changed.items():
        yield SubstitutionsChanged.new(
            producer=PRODUCER,
            payload=SubstitutionsChangedPayload(
                chain=chain,
                sku=sku,
                substitutes=tuple(
                    Substitute(
                        level=row.level, chain=row.chain, sku=row.sku, score=row.score, reason=row.reason
                    )
                    for row in rows
                ),
            ),
        )
