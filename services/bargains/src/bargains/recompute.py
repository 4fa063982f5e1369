"""Incremental recomputation: a price event updates exactly the bargains it affects."""

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import structlog

from bargains.domain.bargains import Policy, assess, cross_chain, is_outlier
from bargains.domain.history import Segment, count_moves, fold
from bargains.repository import BargainsRepository, StoredBargain
from bargains.settings import BargainsSettings
from contracts import Event
from contracts.events import Bargain, BargainChange, BargainsChanged
from contracts.events.v1 import (
    MAX_OBSERVATIONS,
    BargainsChangedPayload,
    PricesScrapedPayload,
    StoreGroupChangedPayload,
    SubstitutionsChangedPayload,
)
from servicekit.db import Database
from servicekit.outbox import enqueue

log = structlog.get_logger(__name__)
PRODUCER = "bargains"

Key = tuple[str, str]
"""A product at a store: (store_id, sku)."""


def policy_from(settings: BargainsSettings) -> Policy:
    """Build the domain policy from settings."""
    return Policy(
        freshness=timedelta(days=settings.freshness_days),
        reference=timedelta(days=settings.reference_days),
        min_discount=settings.min_discount,
        lookback=timedelta(days=settings.lookback_days),
    )


def _changes(
    current: dict[str, StoredBargain], desired: dict[str, StoredBargain]
) -> list[tuple[str, StoredBargain]]:
    """Compare listed and wanted bargains: appeared, changed and expired ones."""
    out: list[tuple[str, StoredBargain]] = []
    for bargain_id, wanted in desired.items():
        had = current.get(bargain_id)
        if had is None:
            out.append(("appeared", wanted))
        elif (had.price_cents, had.reference_cents, had.reason) != (
            wanted.price_cents,
            wanted.reference_cents,
            wanted.reason,
        ):
            out.append(("changed", wanted))
    out += [("expired", had) for bargain_id, had in current.items() if bargain_id not in desired]
    return out


def events_for(changes: Sequence[tuple[str, StoredBargain]]) -> list[Event]:
    """Make BargainsChanged events, one per store (chunked), from changes."""
    by_store: dict[tuple[str, str], list[BargainChange]] = defaultdict(list)
    for change, b in changes:
        bargain = Bargain(
            bargain_id=b.bargain_id,
            kind=b.kind,  # type: ignore[arg-type]
            chain=b.chain,
            store_id=b.store_id,
            sku=b.sku,
            price_cents=b.price_cents,
            reference_cents=b.reference_cents,
            score=min(1.0, max(0.0, float(b.score))),
            reason=b.reason[:500],
            observed_at=b.observed_at,
        )
        by_store[(b.chain, b.store_id)].append(BargainChange(change=change, bargain=bargain))  # type: ignore[arg-type]
    events: list[Event] = []
    for (chain, store_id), items in by_store.items():
        for start in range(0, len(items), MAX_OBSERVATIONS):
            payload = BargainsChangedPayload(
                chain=chain, store_id=store_id, changes=tuple(items[start : start + MAX_OBSERVATIONS])
            )
            events.append(BargainsChanged.new(producer=PRODUCER, payload=payload))
    return events


class Recomputer:
    """Fold prices into history and recompute the bargains of the products they touch."""

    def __init__(self, *, policy: Policy) -> None:
        self.policy = policy

    async def on_prices(
        self, repo: BargainsRepository, batches: Sequence[PricesScrapedPayload]
    ) -> list[Event]:
        """Fold batches of prices into history; return the BargainsChanged they cause."""
        by_chain: dict[str, list[PricesScrapedPayload]] = defaultdict(list)
        for batch in batches:
            by_chain[batch.chain].append(batch)
        events: list[Event] = []
        for chain, chain_batches in by_chain.items():
            events += await self._on_chain_prices(repo, chain, chain_batches)
        return events

    async def _on_chain_prices(
        self, repo: BargainsRepository, chain: str, batches: list[PricesScrapedPayload]
    ) -> list[Event]:
        """Fold one chain's batches, in order, with a fixed number of statements however many."""
        keys = list(dict.fromkeys((batch.store_id, o.sku) for batch in batches for o in batch.observations))
        histories = await repo.histories(chain=chain, keys=keys)
        before = dict(histories)
        categories: dict[Key, str | None] = {}
        for batch in batches:
            category = batch.page.category if batch.page else None
            for o in batch.observations:
                key = (batch.store_id, o.sku)
                histories[key] = fold(
                    histories.get(key, ()),
                    price_cents=o.price_cents,
                    was_price_cents=o.was_price_cents,
                    observed_at=o.observed_at,
                )
                categories[key] = category
        changed = [key for key in keys if histories[key] != before.get(key, ())]
        # fold only extends a history's newest segment or appends one: older segments never change.
        await repo.save_segments(
            chain=chain,
            segments=[
                (store, sku, segment)
                for store, sku in changed
                for segment in histories[store, sku]
                if segment not in before.get((store, sku), ())
            ],
        )
        await repo.move_current_prices(
            chain=chain,
            moves=[m for key in changed for m in count_moves(key[1], before.get(key, ()), histories[key])],
        )
        anchors = await repo.anchors_of(chain=chain, store_ids=list({store for store, _ in keys}))
        # A member's sample only counts toward the chain: its anchor's bargains answer for it.
        return await self._reassess(
            repo, chain, [key for key in keys if anchors[key[0]] == key[0]], histories, categories
        )

    async def _reassess(
        self,
        repo: BargainsRepository,
        chain: str,
        keys: list[Key],
        histories: dict[Key, tuple[Segment, ...]],
        categories: dict[Key, str | None],
    ) -> list[Event]:
        """Recompute the bargains and flags of (store, sku) pairs of a chain from their histories."""
        if not keys:
            return []
        now = datetime.now(UTC)
        fresh_after = now - self.policy.freshness
        # Only products with a fresh price can be bargains: the others need no medians.
        fresh = [key for key in keys if key in histories and histories[key][-1].ends_at >= fresh_after]
        fresh_skus = sorted({sku for _, sku in fresh})
        medians = await repo.current_medians(chain=chain, skus=fresh_skus, fresh_after=fresh_after)
        others = await repo.other_chain_prices(chain=chain, skus=fresh_skus, fresh_after=fresh_after)
        desired: dict[str, StoredBargain] = {}
        flags: list[tuple[str, str, str, str, datetime]] = []
        for store, sku in fresh:
            history = histories[store, sku]
            latest = history[-1]
            if sku in medians and is_outlier(latest.price_cents, medians[sku]):
                # Suspicious, never a bargain: likely a typo or a unit mix-up at the shop.
                reason = (
                    f"suspicious: {latest.price_cents} cents against a median of {medians[sku]:.0f} cents"
                )
                flags.append((store, sku, "outlier", reason, latest.ends_at))
                continue
            assessment = assess(history, now=now, policy=self.policy)
            found_all = list(assessment.bargains)
            if others.get(sku) and not assessment.flags:
                counts, chains = others[sku]
                cheaper = cross_chain(
                    latest.price_cents, counts, chains=chains, observed_at=latest.ends_at, policy=self.policy
                )
                found_all += [cheaper] if cheaper else []
            for found in found_all:
                bargain_id = f"{found.kind}:{chain}:{store}:{sku}"
                desired[bargain_id] = StoredBargain(
                    bargain_id,
                    chain,
                    store,
                    sku,
                    categories.get((store, sku)),
                    found.kind,
                    found.price_cents,
                    found.reference_cents,
                    found.score,
                    found.reason,
                    found.observed_at,
                )
            flags += [(store, sku, flag.kind, flag.reason, flag.observed_at) for flag in assessment.flags]
        wanted = set(keys)
        listed = await repo.bargains_of(
            chain=chain, store_ids=sorted({store for store, _ in keys}), skus=sorted({sku for _, sku in keys})
        )
        # The query above asks for every store x every sku: keep only the pairs recomputed here.
        current = {b.bargain_id: b for b in listed if (b.store_id, b.sku) in wanted}
        changes = _changes(current, desired)
        # A special seen again keeps its terms (nothing to announce) but its sighting moves:
        # stored all the same, so it stays fresh for listing and expiry however events were batched.
        await repo.save_bargains(
            bargains=[b for bargain_id, b in desired.items() if current.get(bargain_id) != b]
        )
        await repo.delete_bargains(bargain_ids=[b.bargain_id for change, b in changes if change == "expired"])
        await repo.replace_flags(chain=chain, keys=keys, flags=flags)
        return events_for(changes)

    async def on_substitutes(
        self, repo: BargainsRepository, substitutes: SubstitutionsChangedPayload
    ) -> list[Event]:
        """Record a product's identical (L1/L2) products elsewhere; recompute its cross-chain bargains."""
        chain, sku = substitutes.chain, substitutes.sku
        same = [
            (s.chain, s.sku) for s in substitutes.substitutes if s.level in ("L1", "L2") and s.chain != chain
        ]
        await repo.replace_equivalents(chain=chain, sku=sku, others=same)
        return await self._reassess_everywhere(repo, [(chain, sku)])

    async def on_product(
        self, repo: BargainsRepository, chain: str, sku: str, barcode: str | None
    ) -> list[Event]:
        """Record a product's barcode; recompute it and the same product at other chains."""
        await repo.save_product(chain=chain, sku=sku, barcode=barcode)
        if barcode is None:
            return []
        return await self._reassess_everywhere(repo, await repo.same_barcode(chain=chain, sku=sku))

    async def _reassess_everywhere(
        self, repo: BargainsRepository, products: list[tuple[str, str]]
    ) -> list[Event]:
        """Recompute products at every store that prices them (their cross-chain reference moved)."""
        events: list[Event] = []
        for chain, sku in products:
            keys = [(store, sku) for store in await repo.stores_pricing(chain=chain, sku=sku)]
            histories = await repo.histories(chain=chain, keys=keys)
            events += await self._reassess(repo, chain, keys, histories, {})
        return events

    async def on_group(self, repo: BargainsRepository, group: StoreGroupChangedPayload) -> list[Event]:
        """Record where stores sit; members' own bargains give way to their anchor's."""
        members = await repo.apply_group(group=group)
        if not members:
            return []
        stale = await repo.bargains_of(chain=group.chain, store_ids=members, skus=None)
        await repo.delete_bargains(bargain_ids=[b.bargain_id for b in stale])
        return events_for([("expired", b) for b in stale])


class Expirer:
    """Expire bargains whose price went stale: none rests on an old price."""

    name = "bargain-expiry"

    def __init__(self, *, db: Database, settings: BargainsSettings) -> None:
        self.db = db
        self.settings = settings

    async def run(self, stopping: asyncio.Event) -> None:
        """Expire stale bargains now and then until stopping is set."""
        while not stopping.is_set():
            try:
                await self.expire(datetime.now(UTC))
            except Exception as exc:
                log.error("bargain expiry failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.expiry_check_s)

    async def expire(self, now: datetime) -> int:
        """Remove bargains older than the freshness window and announce it; return how many."""
        horizon = now - timedelta(days=self.settings.freshness_days)
        async with self.db.pool.acquire() as conn, conn.transaction():
            repo = BargainsRepository(conn)
            stale = await repo.stale_bargains(before=horizon)
            await repo.forget_empty_price_counts()
            if stale:
                await repo.delete_bargains(bargain_ids=[b.bargain_id for b in stale])
                await enqueue(conn, events_for([("expired", b) for b in stale]))
        return len(stale)
