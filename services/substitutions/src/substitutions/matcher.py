"""The substitutions service's working state: the catalogue in memory, kept in step with the database.

The model is loaded once when the service starts, the catalogue is loaded from the
database (names encoded only when their embedding is not cached), and then each observed
product updates it incrementally. A rebuild recomputes every list in a worker thread,
reporting progress, while observations wait on the same lock.
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
from servicekit.db import Connection, Database
from servicekit.outbox import enqueue
from substitutions.domain.catalogue import Catalogue, Description, ProductKey, SubstituteRow, known_brands
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

    def __init__(self, *, db: Database, encoder_factory: Callable[[], Encoder], policy: Policy) -> None:
        self.db = db
        self.policy = policy
        self._encoder_factory = encoder_factory
        self.encoder: Encoder | None = None
        self.catalogue: Catalogue | None = None
        # Set while the catalogue holds a change whose transaction has not committed yet.
        self.uncommitted = False
        self.ready = asyncio.Event()
        self.lock = asyncio.Lock()
        self.progress = RebuildProgress()
        self.observed = 0
        self.timings_ms: list[float] = []

    async def start(self) -> None:
        """Load the model, then the catalogue from the database with its stored lists."""
        started = time.perf_counter()
        self.encoder = await asyncio.to_thread(self._encoder_factory)
        async with self.lock:
            await self._reload()
        self.ready.set()
        log.info("catalogue loaded", products=len(self), seconds=round(time.perf_counter() - started, 2))

    async def _reload(self) -> None:
        """Load the catalogue and its stored lists as the database has them."""
        catalogue, _ = await self._load()
        async with self.db.pool.acquire() as conn:
            catalogue.adopt(await SubstitutionsRepository(conn).lists())
        self.catalogue, self.uncommitted = catalogue, False

    def __len__(self) -> int:
        """Return how many products the catalogue holds."""
        return len(self.catalogue) if self.catalogue else 0

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """Open the transaction of an observation; the catalogue counts as committed only if it commits."""
        async with self.db.pool.acquire() as conn:
            async with conn.transaction():
                yield conn
            self.uncommitted = False

    async def observe(self, conn: Connection, *, description: Description, observed_at: datetime) -> int:
        """Store a product's description; if it changed, update the lists it affects. Return events queued."""
        await self.ready.wait()
        repo = SubstitutionsRepository(conn)
        if not await repo.upsert_product(description=description, observed_at=observed_at):
            return 0
        async with self.lock:
            if self.uncommitted:
                # The last observation changed the catalogue, then its transaction failed (the
                # database went away): the catalogue must not run ahead of what was stored.
                await self._reload()
            catalogue, encoder = self._parts()
            started = time.perf_counter()
            product = catalogue.parse(description)
            vector = (await self._vectors(repo, encoder, [product.kind]))[product.kind]
            self.uncommitted = True
            changed = catalogue.observe(product, vector)
            await repo.save_lists(lists=changed)
            queued = await enqueue(conn, _events(changed))
            self.observed += 1
            self._time(time.perf_counter() - started)
        return queued

    def begin_rebuild(self) -> RebuildProgress | None:
        """Mark a rebuild as started and return its progress, or None when one is running already."""
        if self.progress.status == "running":
            return None
        self.progress = RebuildProgress(status="running", phase="queued")
        return self.progress

    async def rebuild(self, progress: RebuildProgress | None = None) -> RebuildProgress:
        """Recompute every product's substitutes from the database; publish the lists that changed."""
        await self.ready.wait()
        if progress is None:
            progress = self.begin_rebuild()
            if progress is None:
                return self.progress
        progress.phase = "loading"
        started = time.perf_counter()
        try:
            async with self.lock:
                catalogue, encoded = await self._load(progress)
                progress.phase, progress.encoded = "matching", encoded
                progress.done, progress.total = 0, len(catalogue)

                def advance(count: int) -> None:
                    progress.done += count

                changed = await asyncio.to_thread(catalogue.rebuild, progress=advance)
                progress.phase = "publishing"
                async with self.db.pool.acquire() as conn, conn.transaction():
                    repo = SubstitutionsRepository(conn)
                    stored = await repo.lists()
                    changed = {key: rows for key, rows in changed.items() if stored.get(key) != rows}
                    await repo.save_lists(lists=changed)
                    await enqueue(conn, _events(changed))
                self.catalogue = catalogue
            progress.status, progress.phase, progress.changed = "done", "done", len(changed)
        except Exception as exc:
            progress.status, progress.error = "failed", f"{type(exc).__name__}: {exc}"
            log.exception("rebuild failed")
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

    async def _load(self, progress: RebuildProgress | None = None) -> tuple[Catalogue, int]:
        """Build a catalogue of every stored product, encoding the names the cache lacks."""
        encoder = self._encoder()
        async with self.db.pool.acquire() as conn, conn.transaction():
            repo = SubstitutionsRepository(conn)
            descriptions = await repo.products()
            catalogue = Catalogue(
                dimensions=encoder.dimensions, policy=self.policy, brands=known_brands(descriptions)
            )
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
                substitutes=tuple(Substitute(**row) for row in rows),
            ),
        )
