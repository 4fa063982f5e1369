"""The grouping cycle: health-check members, ask for stale anchors, regroup, merge, prune."""

import asyncio
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import structlog
from prometheus_client import CollectorRegistry, Gauge

from contracts import Event
from contracts.events import PricesPruned, RescrapeRequested, StoreGroupChanged
from contracts.events.v1 import (
    GroupChangeReason,
    PricesPrunedPayload,
    RescrapeRequestedPayload,
    StoreGroupChangedPayload,
)
from grouping.domain.changes import Cluster, Form, Grow, plan_changes
from grouping.domain.grouping import find_groups, matches, prices_moved
from grouping.repository import GroupingRepository, GroupRow
from grouping.settings import GroupingSettings
from servicekit.db import Database
from servicekit.outbox import enqueue

log = structlog.get_logger(__name__)
PRODUCER = "grouping"


@dataclass(frozen=True, slots=True)
class GroupingGauges:
    """What /metrics tells about groups and the compression they bring."""

    stores: Gauge
    groups: Gauge
    prices_held: Gauge
    prices_answerable: Gauge

    @classmethod
    def register(cls, registry: CollectorRegistry) -> "GroupingGauges":
        """Create the gauges in a service's registry."""
        return cls(
            stores=Gauge("grouping_stores", "Stores known", registry=registry),
            groups=Gauge("grouping_groups", "Store groups", registry=registry),
            prices_held=Gauge("grouping_prices_held", "Price rows held after pruning", registry=registry),
            prices_answerable=Gauge(
                "grouping_prices_answerable",
                "Store prices answerable (what no pruning would hold)",
                registry=registry,
            ),
        )


@dataclass
class CycleReport:
    """What one cycle did, for logs and tests."""

    checked: int = 0
    split: int = 0
    rescrapes: int = 0
    formed: int = 0
    joined: int = 0
    merged: int = 0
    pruned_rows: int = 0
    pairs_compared: int = 0
    pairs_possible: int = 0
    events: list[Event] = field(default_factory=list)

    def changed(self) -> bool:
        """Tell whether the cycle changed anything."""
        return bool(self.events)


def _recheck(report: CycleReport, chain: str, group_id: str, members: list[str]) -> None:
    """Ask for a health-check re-scrape of members: their new prices make them due for a check."""
    for member in members:
        report.rescrapes += 1
        rescrape = RescrapeRequestedPayload(
            chain=chain, store_id=member, reason="health_check", group_id=group_id
        )
        report.events.append(RescrapeRequested.new(producer=PRODUCER, payload=rescrape))


def due_for_regroup(
    *,
    latest: datetime,
    regrouped_at: datetime | None,
    waiting_since: datetime,
    now: datetime,
    quiet: timedelta,
    longest_wait: timedelta,
) -> bool:
    """Tell whether a chain is due a regroup: new prices since the last, and quiet or waited long enough.

    Waiting for a quiet chain spares regroups in the middle of its scrape; a chain that is
    never quiet (scraped without a pause) is still regrouped now and then, with its stores
    that have gone quiet.
    """
    if regrouped_at is not None and regrouped_at > latest:
        return False
    return latest < now - quiet or now - (regrouped_at or waiting_since) >= longest_wait


class GroupingWorker:
    """Runs grouping cycles in the background; one replica at a time holds the cycle lock."""

    name = "grouping-cycle"

    def __init__(self, *, db: Database, settings: GroupingSettings, gauges: GroupingGauges) -> None:
        self.db = db
        self.settings = settings
        self.gauges = gauges
        self._regrouped_at: dict[str, datetime] = {}
        # When a chain not regrouped yet was first seen: a busy chain's wait counts from there.
        self._first_seen: dict[str, datetime] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        """Cycle until stopping is set."""
        while not stopping.is_set():
            try:
                report = await self.cycle()
                if report.changed():
                    log.info(
                        "groups updated",
                        **{k: v for k, v in vars(report).items() if k != "events"},
                        events=len(report.events),
                    )
                    await self.refresh_gauges()
            except Exception as exc:
                log.error("grouping cycle failed", error=f"{type(exc).__name__}: {exc}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), self.settings.cycle_s)

    async def refresh_gauges(self) -> None:
        """Recount stores, groups and prices for /metrics."""
        async with self.db.pool.acquire() as conn:
            counts = await GroupingRepository(conn).counts()
        self.gauges.stores.set(counts["stores"])
        self.gauges.groups.set(counts["groups"])
        self.gauges.prices_held.set(counts["prices_held"])
        self.gauges.prices_answerable.set(counts["prices_answerable"])

    async def cycle(self, now: datetime | None = None) -> CycleReport:
        """Check due members, then regroup chains whose prices changed; stage the events."""
        now = now or datetime.now(UTC)
        since = now - timedelta(hours=self.settings.freshness_h)
        quiet_before = now - timedelta(seconds=self.settings.quiet_s)
        report = CycleReport()
        async with self.db.pool.acquire() as conn, conn.transaction():
            # Replicas share the tables: one cycle at a time.
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock(hashtext('grouping.cycle'))"):
                return report
            repo = GroupingRepository(conn)
            await self._moved_anchors(repo, report, quiet_before=quiet_before)
            await self._health_checks(repo, report, now=now, since=since, quiet_before=quiet_before)
            for chain, latest in (await repo.latest_by_chain()).items():
                if not due_for_regroup(
                    latest=latest,
                    regrouped_at=self._regrouped_at.get(chain),
                    waiting_since=self._first_seen.setdefault(chain, now),
                    now=now,
                    quiet=timedelta(seconds=self.settings.quiet_s),
                    longest_wait=timedelta(seconds=self.settings.regroup_busy_every_s),
                ):
                    continue
                await self._regroup(repo, report, chain=chain, since=since, quiet_before=quiet_before)
                self._regrouped_at[chain] = now
            await enqueue(conn, report.events)
        return report

    # --- health checks ----------------------------------------------------------------

    async def _moved_anchors(
        self, repo: GroupingRepository, report: CycleReport, *, quiet_before: datetime
    ) -> None:
        """Re-check the members of anchors whose last scrape changed most of their prices."""
        for group_id, anchor, compared, changed in await repo.anchor_changes(quiet_before=quiet_before):
            if not group_id or not prices_moved(
                compared=compared,
                changed=changed,
                min_common=self.settings.min_common,
                moved_share=self.settings.anchor_moved_share,
            ):
                continue
            group = await repo.group(group_id=group_id)
            if group is None or group.anchor_store_id != anchor or not group.members:
                continue
            # Its members were confirmed against prices the anchor no longer charges (it moved
            # zone, say): until they are compared again they would be answered from the new ones.
            _recheck(report, group.chain, group.group_id, list(group.members))
            log.info(
                "most of an anchor's prices changed, its members re-checked",
                group=group.group_id,
                anchor=anchor,
                changed=changed,
                compared=compared,
                members=len(group.members),
            )

    async def _health_checks(
        self,
        repo: GroupingRepository,
        report: CycleReport,
        *,
        now: datetime,
        since: datetime,
        quiet_before: datetime,
    ) -> None:
        verified: dict[str, list[str]] = {}
        for check in await repo.due_checks(quiet_before=quiet_before):
            group = await repo.group(group_id=check.group_id)
            assert group is not None
            anchor_seen = check.anchor_last_observed_at
            lag = timedelta(hours=self.settings.anchor_lag_h)
            if anchor_seen is None or anchor_seen < since or anchor_seen < check.last_observed_at - lag:
                # The anchor's prices are stale: judge nothing, ask once for a re-scrape.
                if group.rescrape_requested_at is None:
                    await repo.note_rescrape_requested(group_id=group.group_id, at=now)
                    report.rescrapes += 1
                    payload = RescrapeRequestedPayload(
                        chain=group.chain,
                        store_id=group.anchor_store_id,
                        reason="stale_anchor",
                        group_id=group.group_id,
                        last_observed_at=check.anchor_last_observed_at,
                    )
                    report.events.append(RescrapeRequested.new(producer=PRODUCER, payload=payload))
                continue
            common, equal = await repo.compare(
                chain=check.chain, store_id=check.store_id, anchor=check.anchor_store_id, since=since
            )
            if common < self.settings.min_common:
                # Too few prices to judge the member. Rows equal to the anchor's still go:
                # deleting them loses nothing, the anchor answers the same.
                rows = await repo.prune(
                    chain=check.chain, anchor=check.anchor_store_id, members=[check.store_id]
                )
                await repo.clear_check_due(chain=check.chain, store_id=check.store_id)
                report.pruned_rows += rows
                continue
            report.checked += 1
            await repo.mark_checked(chain=check.chain, store_ids=[check.store_id], at=now)
            if equal >= self.settings.min_share * common:
                verified.setdefault(check.group_id, []).append(check.store_id)
                continue
            report.split += 1
            await repo.place(chain=check.chain, group_id=None, store_ids=[check.store_id])
            await self._announce(repo, report, group.group_id, "split")
            log.info(
                "member split from its group",
                store=check.store_id,
                group=group.group_id,
                share=equal / common,
            )
        for group_id, members in verified.items():
            group = await repo.group(group_id=group_id)
            assert group is not None
            await self._prune(repo, report, group, members, now=now)

    # --- regrouping ---------------------------------------------------------------------

    async def _regroup(
        self,
        repo: GroupingRepository,
        report: CycleReport,
        *,
        chain: str,
        since: datetime,
        quiet_before: datetime,
    ) -> None:
        groups = await repo.groups(chain=chain)
        anchors = {g.anchor_store_id: g.group_id for g in groups.values()}
        unplaced = await repo.unplaced(chain=chain, quiet_before=quiet_before)
        matrix = await repo.price_matrix(chain=chain, store_ids=[*anchors, *unplaced], since=since)
        row = {store: i for i, store in enumerate(matrix.store_ids)}
        if len(row) < 2 and not any(s in row for s in unplaced):
            return
        result = find_groups(
            matrix.prices,
            matrix.store_ids,
            matrix.freshness,
            min_share=self.settings.min_share,
            min_common=self.settings.min_common,
            keep_anchors=[a for a in anchors if a in row],
            group_sizes={g.anchor_store_id: len(g.members) + 1 for g in groups.values()},
        )
        report.pairs_compared += result.pairs_compared
        report.pairs_possible += result.pairs_possible

        def match(a: str, b: str) -> bool:
            return matches(
                matrix.prices[row[a]],
                matrix.prices[row[b]],
                min_share=self.settings.min_share,
                min_common=self.settings.min_common,
            )

        changes = plan_changes(
            [Cluster(g.anchor, tuple(g.members)) for g in result.groups],
            groups_by_anchor={a: gid for a, gid in anchors.items() if a in row},
            group_sizes={gid: len(g.members) + 1 for gid, g in groups.items()},
            anchor_of={gid: g.anchor_store_id for gid, g in groups.items()},
            matches=match,
        )
        now = datetime.now(UTC)
        for change in changes:
            if isinstance(change, Form):
                group_id = f"{chain}-{uuid4().hex[:10]}"
                await repo.create_group(
                    group_id=group_id, chain=chain, anchor=change.anchor, members=change.members
                )
                report.formed += 1
                await self._announce(repo, report, group_id, "formed", new=True)
                if change.members:
                    group = await repo.group(group_id=group_id)
                    assert group is not None
                    await self._prune(repo, report, group, list(change.members), now=now)
            elif isinstance(change, Grow):
                await self._grow(repo, report, change, groups, now=now)

    async def _grow(
        self,
        repo: GroupingRepository,
        report: CycleReport,
        change: Grow,
        groups: dict[str, GroupRow],
        *,
        now: datetime,
    ) -> None:
        survivor = groups[change.group_id]
        moved: list[str] = list(change.joined)
        for absorbed_id in change.absorbed:
            absorbed = groups[absorbed_id]
            moved += [absorbed.anchor_store_id, *absorbed.members]
            await repo.move_members(from_group=absorbed_id, to_group=survivor.group_id)
            await repo.delete_group(group_id=absorbed_id)
            payload = StoreGroupChangedPayload(
                chain=absorbed.chain,
                group_id=absorbed_id,
                group_version=absorbed.version + 1,
                anchor_store_id=absorbed.anchor_store_id,
                member_store_ids=(),
                reason="dissolved",
                merged_into=survivor.group_id,
            )
            report.events.append(StoreGroupChanged.new(producer=PRODUCER, payload=payload))
            report.merged += 1
        if change.absorbed:
            # Groups that were apart now match: one anchor's prices changed (its chain re-zoned it,
            # while its members stayed in the old zone) or they were one zone all along. Members on
            # both sides were confirmed against their own anchor only, before that, and their pruned
            # prices cannot be compared with the survivor's: fresh prices re-check them (new prices
            # make a member due for a health check against its anchor).
            absorbed_members = [m for absorbed_id in change.absorbed for m in groups[absorbed_id].members]
            _recheck(report, survivor.chain, survivor.group_id, [*survivor.members, *absorbed_members])
        await repo.place(chain=survivor.chain, group_id=survivor.group_id, store_ids=list(change.joined))
        report.joined += len(change.joined)
        await self._announce(
            repo, report, survivor.group_id, "merged" if change.absorbed else "member_joined"
        )
        group = await repo.group(group_id=survivor.group_id)
        assert group is not None
        await self._prune(repo, report, group, moved, now=now)

    # --- events -------------------------------------------------------------------------

    async def _announce(
        self,
        repo: GroupingRepository,
        report: CycleReport,
        group_id: str,
        reason: GroupChangeReason,
        *,
        new: bool = False,
    ) -> None:
        """Stage a StoreGroupChanged with the group's full, current membership."""
        version = 1 if new else await repo.bump(group_id=group_id)
        group = await repo.group(group_id=group_id)
        assert group is not None
        payload = StoreGroupChangedPayload(
            chain=group.chain,
            group_id=group.group_id,
            group_version=version,
            anchor_store_id=group.anchor_store_id,
            member_store_ids=group.members,
            reason=reason,
        )
        report.events.append(StoreGroupChanged.new(producer=PRODUCER, payload=payload))

    async def _prune(
        self,
        repo: GroupingRepository,
        report: CycleReport,
        group: GroupRow,
        members: list[str],
        *,
        now: datetime,
    ) -> None:
        """Delete verified members' prices that equal the anchor's, and say so."""
        rows = await repo.prune(chain=group.chain, anchor=group.anchor_store_id, members=members)
        await repo.mark_checked(chain=group.chain, store_ids=members, at=now)
        report.pruned_rows += rows
        if rows:
            payload = PricesPrunedPayload(
                chain=group.chain,
                group_id=group.group_id,
                anchor_store_id=group.anchor_store_id,
                store_ids=tuple(members),
                rows_pruned=rows,
                verified_at=now,
            )
            report.events.append(PricesPruned.new(producer=PRODUCER, payload=payload))
