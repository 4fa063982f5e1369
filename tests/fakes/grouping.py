"""An in-memory grouping repository that keeps the SQL's semantics, for the unit tier."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import numpy as np

from contracts.events import Sighting
from contracts.events.v1 import PricesScrapedPayload
from grouping.domain.policy import GroupingPolicy
from grouping.repository import (
    AnchorChange,
    Comparison,
    DueCheck,
    GroupRow,
    PriceMatrix,
    Shelf,
    answered_by_anchors,
    newest_rows,
)


@dataclass
class PriceRow:
    """A row of latest_prices."""

    price_cents: int
    was_price_cents: int | None
    available: bool
    observed_at: datetime

    def same_shelf(self, other: "PriceRow") -> bool:
        """Tell whether two rows show the same price, was price and availability (what pruning compares)."""
        return (self.price_cents, self.was_price_cents, self.available) == (
            other.price_cents,
            other.was_price_cents,
            other.available,
        )


@dataclass
class StoreRow:
    """A row of stores."""

    group_id: str | None = None
    observed: int = 0
    last_observed_at: datetime | None = None
    last_received_at: datetime | None = None
    check_due: bool = False
    checked_at: datetime | None = None
    compared_since_check: int = 0
    changed_since_check: int = 0
    answered_since_check: int = 0
    last_correlation_id: UUID | None = None


@dataclass
class GroupState:
    """A row of groups."""

    chain: str
    anchor_store_id: str
    version: int = 1
    rescrape_requested_at: datetime | None = None


class InMemoryGroupingRepository:
    """Implements `GroupingRepository` over dicts: the tables as rows, keyed like their primary keys."""

    def __init__(self) -> None:
        self.prices: dict[tuple[str, str], dict[str, PriceRow]] = {}
        """(chain, store) -> sku -> its latest price."""
        self.stores: dict[tuple[str, str], StoreRow] = {}
        self.group_rows: dict[str, GroupState] = {}

    # --- prices -------------------------------------------------------------------------

    async def upsert_prices(
        self, *, batches: Sequence[PricesScrapedPayload], fresh_since: datetime, anchor_lag: timedelta
    ) -> int:
        """Keep each product's latest price, but a member's its anchor answers; return rows written."""
        newest: dict[tuple[str, str, str], Sighting] = {}
        for batch in batches:
            for o in batch.sightings():
                key = (batch.chain, batch.store_id, o.sku)
                if key not in newest or o.observed_at > newest[key].observed_at:
                    newest[key] = o
        self._count_anchor_changes(newest)
        # The repository's own rule, over these rows as its reads would return them.
        anchor_of = self._anchors_of_members()
        stored = {
            (chain, store_id, sku): Shelf(
                row.price_cents, row.was_price_cents, row.available, row.observed_at
            )
            for (chain, store_id), held in self.prices.items()
            if (chain, store_id) in anchor_of or store_id in anchor_of.values()
            for sku, row in held.items()
        }
        answered = {
            (row.chain, row.store_id, row.sku)
            for row in answered_by_anchors(
                newest_rows(batches),
                anchor_of=anchor_of,
                stored=stored,
                fresh_since=fresh_since,
                anchor_lag=anchor_lag,
            )
        }
        written = 0
        for (chain, store_id, sku), o in newest.items():
            held = self.prices.setdefault((chain, store_id), {})
            if (chain, store_id, sku) in answered:
                held.pop(sku, None)
                self.stores[(chain, store_id)].answered_since_check += 1
            elif sku not in held or o.observed_at > held[sku].observed_at:
                held[sku] = PriceRow(o.price_cents, o.was_price_cents, o.available, o.observed_at)
                written += 1
        return written

    def _anchors_of_members(self) -> dict[tuple[str, str], str]:
        """Return each member's anchor, keyed by (chain, store)."""
        return {
            (chain, store_id): group.anchor_store_id
            for (chain, store_id), store in self.stores.items()
            if store.group_id is not None
            and (group := self.group_rows.get(store.group_id)) is not None
            and group.anchor_store_id != store_id
        }

    def _count_anchor_changes(self, newest: dict[tuple[str, str, str], Sighting]) -> None:
        # An anchor's changes are counted to re-check its members: a store alone has none.
        leading = {
            store.group_id
            for (_, store_id), store in self.stores.items()
            if store.group_id in self.group_rows
            and store_id != self.group_rows[store.group_id].anchor_store_id
        }
        anchors = {
            (g.chain, g.anchor_store_id) for group_id, g in self.group_rows.items() if group_id in leading
        }
        for (chain, store_id, sku), o in newest.items():
            store = self.stores.get((chain, store_id))
            held = self.prices.get((chain, store_id), {}).get(sku)
            if (chain, store_id) not in anchors or store is None or held is None:
                continue
            if o.observed_at > held.observed_at:
                store.compared_since_check += 1
                store.changed_since_check += held.price_cents != o.price_cents

    async def note_store_prices(
        self,
        *,
        batches: Sequence[PricesScrapedPayload],
        received_at: datetime,
        correlation_id: UUID | None = None,
    ) -> None:
        """Record stores' prices arrived: members become due for a check, anchors' re-scrapes answered."""
        arrived: dict[tuple[str, str], tuple[int, datetime]] = {}
        for batch in batches:
            key = (batch.chain, batch.store_id)
            newest = batch.newest()
            observed, latest = arrived.get(key, (0, newest))
            arrived[key] = (observed + batch.count(), max(latest, newest))
        for (chain, store_id), (observed, latest) in sorted(arrived.items()):
            store = self.stores.get((chain, store_id))
            if store is None:
                self.stores[(chain, store_id)] = StoreRow(
                    observed=observed,
                    last_observed_at=latest,
                    last_received_at=received_at,
                    last_correlation_id=correlation_id,
                )
                continue
            store.observed += observed
            store.last_correlation_id = correlation_id or store.last_correlation_id
            # greatest() ignores NULL.
            store.last_observed_at = max(store.last_observed_at or latest, latest)
            store.last_received_at = received_at
            group = self.group_rows.get(store.group_id) if store.group_id else None
            store.check_due = store.check_due or (group is not None and group.anchor_store_id != store_id)
        for group in self.group_rows.values():
            if (group.chain, group.anchor_store_id) in arrived:
                group.rescrape_requested_at = None

    # --- what the cycle looks at --------------------------------------------------------

    async def anchor_changes(self, *, quiet_before: datetime) -> list[AnchorChange]:
        """Return and reset the change counts of anchors whose scrape has gone quiet."""
        changes = []
        for (chain, store_id), store in sorted(self.stores.items()):
            if store.compared_since_check > 0 and _before(store.last_received_at, quiet_before):
                changes.append(
                    AnchorChange(
                        chain=chain,
                        store_id=store_id,
                        group_id=store.group_id,
                        compared=store.compared_since_check,
                        changed=store.changed_since_check,
                    )
                )
                store.compared_since_check = store.changed_since_check = 0
        return changes

    async def chain_correlations(self) -> dict[str, UUID]:
        """Return each chain's correlation id of its latest prices received."""
        latest: dict[str, tuple[datetime, UUID]] = {}
        for (chain, _), store in sorted(self.stores.items()):
            if store.last_received_at is None or store.last_correlation_id is None:
                continue
            if chain not in latest or store.last_received_at > latest[chain][0]:
                latest[chain] = (store.last_received_at, store.last_correlation_id)
        return {chain: cause for chain, (_, cause) in latest.items()}

    async def latest_by_chain(self) -> dict[str, datetime]:
        """Return each chain's newest price arrival."""
        latest: dict[str, datetime] = {}
        for (chain, _), store in sorted(self.stores.items()):
            if store.last_received_at is not None:
                latest[chain] = max(latest.get(chain, store.last_received_at), store.last_received_at)
        return latest

    async def due_checks(self, *, quiet_before: datetime) -> list[DueCheck]:
        """Return members with new prices whose scrape has gone quiet."""
        checks = []
        for (chain, store_id), store in self.stores.items():
            group = self.group_rows.get(store.group_id) if store.group_id else None
            if group is None or not store.check_due or not _before(store.last_received_at, quiet_before):
                continue
            assert store.group_id is not None
            assert store.last_observed_at is not None
            anchor = self.stores.get((chain, group.anchor_store_id))
            checks.append(
                DueCheck(
                    chain=chain,
                    store_id=store_id,
                    group_id=store.group_id,
                    anchor_store_id=group.anchor_store_id,
                    anchor_last_observed_at=None if anchor is None else anchor.last_observed_at,
                    last_observed_at=store.last_observed_at,
                    answered=store.answered_since_check,
                )
            )
        return sorted(checks, key=lambda c: (c.chain, c.group_id, c.store_id))

    async def compare(self, *, chain: str, store_id: str, anchor: str, since: datetime) -> Comparison:
        """Count the products both stores hold fresh prices for, and the equal prices among them."""
        theirs = self.prices.get((chain, anchor), {})
        common = equal = 0
        for sku, mine in self.prices.get((chain, store_id), {}).items():
            other = theirs.get(sku)
            if other is not None and mine.observed_at >= since and other.observed_at >= since:
                common += 1
                equal += mine.price_cents == other.price_cents
        return Comparison(common=common, equal=equal)

    async def mark_checked(self, *, chain: str, store_ids: Sequence[str], at: datetime) -> None:
        """Record a health check (passed or not) of members."""
        for store in self._existing(chain, store_ids):
            store.check_due, store.checked_at, store.answered_since_check = False, at, 0

    async def clear_check_due(self, *, chain: str, store_id: str) -> None:
        """Stop waiting to check a member whose new prices were too few to judge."""
        for store in self._existing(chain, [store_id]):
            store.check_due, store.answered_since_check = False, 0

    async def price_matrix(self, *, chain: str, store_ids: Sequence[str], since: datetime) -> PriceMatrix:
        """Load the fresh prices of stores into a matrix."""
        fresh = {
            store_id: {
                sku: p.price_cents
                for sku, p in self.prices.get((chain, store_id), {}).items()
                if p.observed_at >= since
            }
            for store_id in set(store_ids)
        }
        stores = sorted(s for s, prices in fresh.items() if prices)
        skus = sorted({sku for prices in fresh.values() for sku in prices})
        column = {sku: i for i, sku in enumerate(skus)}
        matrix = np.zeros((len(stores), len(skus)), dtype=np.int32)
        for row, store_id in enumerate(stores):
            for sku, cents in fresh[store_id].items():
                matrix[row, column[sku]] = cents
        freshness = []
        for store_id in stores:
            seen = self.stores.get((chain, store_id))
            freshness.append(
                0.0 if seen is None or seen.last_observed_at is None else seen.last_observed_at.timestamp()
            )
        return PriceMatrix(stores, matrix, freshness)

    async def unplaced(self, *, chain: str, quiet_before: datetime) -> list[str]:
        """Return a chain's stores without a group whose scrape has gone quiet, by id."""
        return sorted(
            store_id
            for (c, store_id), store in self.stores.items()
            if c == chain and store.group_id is None and _before(store.last_received_at, quiet_before)
        )

    # --- groups -------------------------------------------------------------------------

    async def groups(self, *, chain: str) -> dict[str, GroupRow]:
        """Return a chain's groups with their members, by group id."""
        return {gid: self._group_row(gid) for gid, g in self.group_rows.items() if g.chain == chain}

    async def group(self, *, group_id: str) -> GroupRow | None:
        """Return one group with its members."""
        return self._group_row(group_id) if group_id in self.group_rows else None

    async def create_group(self, *, group_id: str, chain: str, anchor: str, members: Sequence[str]) -> None:
        """Create a group (version 1) and place its stores in it."""
        assert group_id not in self.group_rows, "group_id is the primary key"
        self.group_rows[group_id] = GroupState(chain=chain, anchor_store_id=anchor)
        await self.place(chain=chain, group_id=group_id, store_ids=[anchor, *members])

    async def place(self, *, chain: str, group_id: str | None, store_ids: Sequence[str]) -> None:
        """Put stores in a group (None: take them out of any); they are no longer due for a check."""
        for store in self._existing(chain, store_ids):
            store.group_id, store.check_due, store.answered_since_check = group_id, False, 0

    async def move_members(self, *, from_group: str, to_group: str) -> None:
        """Move every store of a group into another (a merge)."""
        for store in self.stores.values():
            if store.group_id == from_group:
                store.group_id = to_group

    async def delete_group(self, *, group_id: str) -> None:
        """Remove a group that was merged away."""
        self.group_rows.pop(group_id, None)

    async def bump(self, *, group_id: str) -> int:
        """Increase a group's version; return the new one."""
        group = self.group_rows[group_id]
        group.version += 1
        return group.version

    async def note_rescrape_requested(self, *, group_id: str, at: datetime) -> None:
        """Remember that a re-scrape of the group's anchor was asked for."""
        if group_id in self.group_rows:
            self.group_rows[group_id].rescrape_requested_at = at

    async def prune(self, *, chain: str, anchor: str, members: Sequence[str]) -> int:
        """Delete members' prices equal to the anchor's (price, was price, availability); return rows."""
        anchors = dict(self.prices.get((chain, anchor), {}))  # as the statement saw it, before deleting
        deleted = 0
        for member in set(members):
            held = self.prices.get((chain, member), {})
            equal = [sku for sku, row in held.items() if sku in anchors and anchors[sku].same_shelf(row)]
            for sku in equal:
                del held[sku]
            deleted += len(equal)
        return deleted

    async def keep_answered(self, *, chain: str, store_id: str, anchor: str) -> int:
        """Copy to a member leaving its group the anchor's prices it holds none of; return rows."""
        held = self.prices.setdefault((chain, store_id), {})
        missing = {sku: row for sku, row in self.prices.get((chain, anchor), {}).items() if sku not in held}
        held.update({sku: PriceRow(**vars(row)) for sku, row in missing.items()})
        return len(missing)

    # --- helpers ------------------------------------------------------------------------

    def _existing(self, chain: str, store_ids: Sequence[str]) -> list[StoreRow]:
        return [self.stores[(chain, s)] for s in set(store_ids) if (chain, s) in self.stores]

    def _group_row(self, group_id: str) -> GroupRow:
        group = self.group_rows[group_id]
        members = sorted(
            store_id
            for (_, store_id), store in self.stores.items()
            if store.group_id == group_id and store_id != group.anchor_store_id
        )
        return GroupRow(
            group_id=group_id,
            chain=group.chain,
            anchor_store_id=group.anchor_store_id,
            version=group.version,
            members=tuple(members),
            rescrape_requested_at=group.rescrape_requested_at,
        )

    def held(self, chain: str, store_id: str) -> dict[str, int]:
        """Return the prices a store holds (after pruning), sku -> cents."""
        return {sku: p.price_cents for sku, p in self.prices.get((chain, store_id), {}).items()}


def _before(moment: datetime | None, limit: datetime) -> bool:
    """Compare like SQL's `moment < limit`: NULL is never before anything."""
    return moment is not None and moment < limit


# The policy the unit tests group with: the service's defaults with a short quiet time.
POLICY = GroupingPolicy(
    min_share=0.98,
    min_common=50,
    anchor_moved_share=0.5,
    freshness=timedelta(hours=168),
    anchor_lag=timedelta(hours=24),
    quiet=timedelta(seconds=2),
    regroup_busy_every=timedelta(seconds=60),
)
