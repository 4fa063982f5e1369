"""The grouping service's use cases: fold scraped prices in; run one grouping cycle.

A cycle, in one unit of work: re-check the members of anchors whose prices moved, judge the
members whose new prices went quiet (`domain.health`), regroup the chains that are due
(`domain.regroup`), form, grow and merge groups (`domain.changes`), prune what anchors answer.
Nothing here reads the clock: every use case is given `now`.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar
from uuid import UUID, uuid4

import structlog

from contracts import Event
from contracts.events import PricesPruned, RescrapeRequested, StoreGroupChanged
from contracts.events.v1 import (
    GroupChangeReason,
    PricesPrunedPayload,
    PricesScrapedPayload,
    RescrapeRequestedPayload,
    StoreGroupChangedPayload,
)
from grouping.domain.changes import Change, Cluster, Form, Grow, plan_changes
from grouping.domain.grouping import find_groups, matches
from grouping.domain.health import Verdict, anchor_is_stale, anchor_moved, judge_prices
from grouping.domain.policy import GroupingPolicy
from grouping.domain.regroup import RegroupMemory
from grouping.repository import Comparison, DueCheck, GroupingRepository, GroupRow
from servicekit.unit_of_work import Work

log = structlog.get_logger(__name__)
PRODUCER = "grouping"
CycleEvent = TypeVar("CycleEvent", RescrapeRequested, StoreGroupChanged, PricesPruned)
CyclePayload = RescrapeRequestedPayload | StoreGroupChangedPayload | PricesPrunedPayload


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

    def figures(self) -> dict[str, int]:
        """Return the counts, for a log line."""
        return {k: v for k, v in vars(self).items() if k != "events"}


async def fold_prices(
    work: Work[GroupingRepository],
    batches: Sequence[PricesScrapedPayload],
    *,
    now: datetime,
    policy: GroupingPolicy,
    correlation_id: UUID | None = None,
) -> None:
    """Fold stores' prices into the latest-price projection; mark members due for a health check.

    A member's price that its fresh anchor charges too is answered by the anchor, not stored
    (its health check counts it). `correlation_id` (the prices' events') stays with the
    stores, for the cycle's events about them.
    """
    if not batches:
        return
    await work.repo.upsert_prices(
        batches=batches, fresh_since=policy.fresh_since(now), anchor_lag=policy.anchor_lag
    )
    await work.repo.note_store_prices(batches=batches, received_at=now, correlation_id=correlation_id)


async def run_cycle(
    work: Work[GroupingRepository], *, now: datetime, policy: GroupingPolicy, memory: RegroupMemory
) -> CycleReport:
    """Re-check moved anchors' members, judge due members, regroup due chains; stage the events."""
    cycle = _Cycle(work.repo, policy=policy, now=now, causes=await work.repo.chain_correlations())
    await cycle.recheck_moved_anchors()
    await cycle.check_due_members()
    for chain, latest in (await work.repo.latest_by_chain()).items():
        if memory.due(chain, latest=latest, now=now, policy=policy):
            await cycle.regroup(chain)
            memory.regrouped(chain, at=now)
    work.publish(cycle.report.events)
    return cycle.report


class _Cycle:
    """One cycle's steps over one transaction's repository, gathering what they did in a report."""

    def __init__(
        self, repo: GroupingRepository, *, policy: GroupingPolicy, now: datetime, causes: dict[str, UUID]
    ) -> None:
        self.repo = repo
        # A chain's latest prices caused what the cycle decides about it: its events carry their id.
        self.causes = causes
        self.policy = policy
        self.now = now
        self.since = policy.fresh_since(now)
        self.quiet_before = policy.quiet_before(now)
        self.report = CycleReport()

    def event(self, kind: type[CycleEvent], payload: CyclePayload) -> CycleEvent:
        """Return a new event about a chain, correlated with the chain's latest prices."""
        return kind.new(producer=PRODUCER, payload=payload, correlation_id=self.causes.get(payload.chain))

    # --- health checks ----------------------------------------------------------------

    async def recheck_moved_anchors(self) -> None:
        """Re-check the members of anchors whose last scrape changed most of their prices."""
        for change in await self.repo.anchor_changes(quiet_before=self.quiet_before):
            if not change.group_id or not anchor_moved(
                compared=change.compared, changed=change.changed, policy=self.policy
            ):
                continue
            group = await self.repo.group(group_id=change.group_id)
            if group is None or group.anchor_store_id != change.store_id or not group.members:
                continue
            # Its members were confirmed against prices the anchor no longer charges (it moved
            # zone, say): until they are compared again they would be answered from the new ones.
            self.recheck(group, group.members)
            log.info(
                "most of an anchor's prices changed, its members re-checked",
                group=group.group_id,
                anchor=change.store_id,
                changed=change.changed,
                compared=change.compared,
                members=len(group.members),
            )

    async def check_due_members(self) -> None:
        """Judge each member whose new prices went quiet; prune the verified ones, group by group."""
        verified: dict[str, list[DueCheck]] = {}
        for check in await self.repo.due_checks(quiet_before=self.quiet_before):
            if await self.check_member(check) is Verdict.VERIFIED:
                verified.setdefault(check.group_id, []).append(check)
        for group_id, checks in verified.items():
            await self.prune(
                await self.group(group_id),
                [check.store_id for check in checks],
                answered=sum(check.answered for check in checks),
            )

    async def check_member(self, check: DueCheck) -> Verdict:
        """Compare a member with its anchor and act on the verdict (a verified member is pruned later,
        which records it checked with the others of its group)."""
        group = await self.group(check.group_id)
        if anchor_is_stale(
            anchor_seen=check.anchor_last_observed_at,
            member_seen=check.last_observed_at,
            now=self.now,
            policy=self.policy,
        ):
            await self.ask_anchor_rescrape(group, check)
            return Verdict.STALE_ANCHOR
        stored = await self.repo.compare(
            chain=check.chain, store_id=check.store_id, anchor=check.anchor_store_id, since=self.since
        )
        # Prices its anchor answered were equal to the anchor's when they came: never stored.
        counts = Comparison(common=stored.common + check.answered, equal=stored.equal + check.answered)
        verdict = judge_prices(common=counts.common, equal=counts.equal, policy=self.policy)
        if verdict is Verdict.TOO_FEW_PRICES:
            # Rows equal to the anchor's still go: deleting them loses nothing, the anchor answers the same.
            rows = await self.repo.prune(
                chain=check.chain, anchor=check.anchor_store_id, members=[check.store_id]
            )
            await self.repo.clear_check_due(chain=check.chain, store_id=check.store_id)
            self.report.pruned_rows += rows + check.answered
            return verdict
        self.report.checked += 1
        if verdict is Verdict.SPLIT:
            self.report.split += 1
            await self.repo.mark_checked(chain=check.chain, store_ids=[check.store_id], at=self.now)
            # What its anchor answered for it stays its own: it is compared and regrouped on it.
            await self.repo.keep_answered(
                chain=check.chain, store_id=check.store_id, anchor=check.anchor_store_id
            )
            await self.repo.place(chain=check.chain, group_id=None, store_ids=[check.store_id])
            await self.announce(group.group_id, "split")
            log.info(
                "member split from its group",
                store=check.store_id,
                group=group.group_id,
                share=counts.equal / counts.common,
            )
        return verdict

    async def ask_anchor_rescrape(self, group: GroupRow, check: DueCheck) -> None:
        """Ask once for a re-scrape of a group's stale anchor (its new prices clear the request)."""
        if group.rescrape_requested_at is not None:
            return
        await self.repo.note_rescrape_requested(group_id=group.group_id, at=self.now)
        self.report.rescrapes += 1
        payload = RescrapeRequestedPayload(
            chain=group.chain,
            store_id=group.anchor_store_id,
            reason="stale_anchor",
            group_id=group.group_id,
            last_observed_at=check.anchor_last_observed_at,
        )
        self.report.events.append(self.event(RescrapeRequested, payload))

    def recheck(self, group: GroupRow, members: Sequence[str]) -> None:
        """Ask for a health-check re-scrape of members: their new prices make them due for a check."""
        for member in members:
            self.report.rescrapes += 1
            rescrape = RescrapeRequestedPayload(
                chain=group.chain, store_id=member, reason="health_check", group_id=group.group_id
            )
            self.report.events.append(self.event(RescrapeRequested, rescrape))

    # --- regrouping ---------------------------------------------------------------------

    async def regroup(self, chain: str) -> None:
        """Cluster a chain's anchors with its unplaced stores; form, grow and merge groups."""
        groups = await self.repo.groups(chain=chain)
        for change in await self.plan(chain, groups):
            if isinstance(change, Form):
                await self.form(chain, change)
            else:
                await self.grow(change, groups)

    async def plan(self, chain: str, groups: dict[str, GroupRow]) -> list[Change]:
        """Decide the changes: cluster current anchors and quiet unplaced stores on their fresh prices."""
        anchors = {g.anchor_store_id: g.group_id for g in groups.values()}
        unplaced = await self.repo.unplaced(chain=chain, quiet_before=self.quiet_before)
        matrix = await self.repo.price_matrix(chain=chain, store_ids=[*anchors, *unplaced], since=self.since)
        row = {store: i for i, store in enumerate(matrix.store_ids)}
        if len(row) < 2 and not any(s in row for s in unplaced):
            return []
        min_share, min_common = self.policy.min_share, self.policy.min_common
        result = find_groups(
            matrix.prices,
            matrix.store_ids,
            matrix.freshness,
            min_share=min_share,
            min_common=min_common,
            keep_anchors=[a for a in anchors if a in row],
            group_sizes={g.anchor_store_id: len(g.members) + 1 for g in groups.values()},
        )
        self.report.pairs_compared += result.pairs_compared
        self.report.pairs_possible += result.pairs_possible
        return plan_changes(
            [Cluster(g.anchor, tuple(g.members)) for g in result.groups],
            groups_by_anchor={a: gid for a, gid in anchors.items() if a in row},
            group_sizes={gid: len(g.members) + 1 for gid, g in groups.items()},
            anchor_of={gid: g.anchor_store_id for gid, g in groups.items()},
            matches=lambda a, b: matches(
                matrix.prices[row[a]], matrix.prices[row[b]], min_share=min_share, min_common=min_common
            ),
        )

    async def form(self, chain: str, change: Form) -> None:
        """Create a group of unplaced stores, announce it and prune its members."""
        group_id = f"{chain}-{uuid4().hex[:10]}"
        await self.repo.create_group(
            group_id=group_id, chain=chain, anchor=change.anchor, members=change.members
        )
        self.report.formed += 1
        group = await self.announce(group_id, "formed", new=True)
        if change.members:
            await self.prune(group, list(change.members))

    async def grow(self, change: Grow, groups: dict[str, GroupRow]) -> None:
        """Place unplaced stores in a group and merge other groups into it; announce and prune."""
        survivor = groups[change.group_id]
        moved: list[str] = list(change.joined)
        for absorbed_id in change.absorbed:
            absorbed = groups[absorbed_id]
            moved += [absorbed.anchor_store_id, *absorbed.members]
            await self.repo.move_members(from_group=absorbed_id, to_group=survivor.group_id)
            await self.repo.delete_group(group_id=absorbed_id)
            payload = StoreGroupChangedPayload(
                chain=absorbed.chain,
                group_id=absorbed_id,
                group_version=absorbed.version + 1,
                anchor_store_id=absorbed.anchor_store_id,
                member_store_ids=(),
                reason="dissolved",
                merged_into=survivor.group_id,
            )
            self.report.events.append(self.event(StoreGroupChanged, payload))
            self.report.merged += 1
        if change.absorbed:
            # Groups that were apart now match: one anchor's prices changed (its chain re-zoned it,
            # while its members stayed in the old zone) or they were one zone all along. Members on
            # both sides were confirmed against their own anchor only, before that, and their pruned
            # prices cannot be compared with the survivor's: fresh prices re-check them (new prices
            # make a member due for a health check against its anchor).
            absorbed_members = [m for absorbed_id in change.absorbed for m in groups[absorbed_id].members]
            self.recheck(survivor, [*survivor.members, *absorbed_members])
        await self.repo.place(chain=survivor.chain, group_id=survivor.group_id, store_ids=list(change.joined))
        self.report.joined += len(change.joined)
        group = await self.announce(survivor.group_id, "merged" if change.absorbed else "member_joined")
        await self.prune(group, moved)

    # --- events -------------------------------------------------------------------------

    async def group(self, group_id: str) -> GroupRow:
        """Return a group that must exist (this transaction found or made it)."""
        group = await self.repo.group(group_id=group_id)
        assert group is not None, f"group {group_id} vanished inside its transaction"
        return group

    async def announce(self, group_id: str, reason: GroupChangeReason, *, new: bool = False) -> GroupRow:
        """Stage a StoreGroupChanged with the group's full, current membership; return the group."""
        version = 1 if new else await self.repo.bump(group_id=group_id)
        group = await self.group(group_id)
        payload = StoreGroupChangedPayload(
            chain=group.chain,
            group_id=group.group_id,
            group_version=version,
            anchor_store_id=group.anchor_store_id,
            member_store_ids=group.members,
            reason=reason,
        )
        self.report.events.append(self.event(StoreGroupChanged, payload))
        return group

    async def prune(self, group: GroupRow, members: list[str], *, answered: int = 0) -> None:
        """Delete verified members' prices that equal the anchor's, and say so.

        `answered`: their prices the anchor answered as they came, never stored. They count
        as pruned (on arrival), so a verified member is announced as before.
        """
        rows = answered + await self.repo.prune(
            chain=group.chain, anchor=group.anchor_store_id, members=members
        )
        await self.repo.mark_checked(chain=group.chain, store_ids=members, at=self.now)
        self.report.pruned_rows += rows
        if rows:
            payload = PricesPrunedPayload(
                chain=group.chain,
                group_id=group.group_id,
                anchor_store_id=group.anchor_store_id,
                store_ids=tuple(members),
                rows_pruned=rows,
                verified_at=self.now,
            )
            self.report.events.append(self.event(PricesPruned, payload))
