"""The grouping cycle over an in-memory repository: groups form, grow, merge, split, prune, ask again."""

from collections.abc import Collection, Mapping
from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import PriceObservation, PricesPruned, RescrapeRequested, StoreGroupChanged
from contracts.events.v1 import PricesScrapedPayload
from grouping import service_layer
from grouping.domain.regroup import RegroupMemory
from grouping.repository import (
    GroupRow,
    Shelf,
    StagedRow,
    answered_by_anchors,
    newest_rows,
)
from grouping.service_layer import CycleReport
from tests.fakes.grouping import POLICY, InMemoryGroupingRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

CHAIN = "c"
T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
QUIET = timedelta(seconds=3)
# Two pricing zones of 60 products: every price differs between them.
ZONE_A = {f"p{i:02d}": 100 + i for i in range(60)}
ZONE_B = {sku: cents + 13 for sku, cents in ZONE_A.items()}


def _repriced(prices: Mapping[str, int], skus: Collection[str], cents: int = 7) -> dict[str, int]:
    """Return a copy of prices with some products dearer."""
    return {sku: cents_ + (cents if sku in skus else 0) for sku, cents_ in prices.items()}


def _every(n: int) -> list[str]:
    """Return every n-th product of the zones."""
    return [sku for i, sku in enumerate(ZONE_A) if i % n == 0]


class Grouping:
    """The grouping service's use cases over an in-memory repository, driven by a test clock."""

    def __init__(self) -> None:
        self.uow = FakeUnitOfWork(InMemoryGroupingRepository())
        self.memory = RegroupMemory()

    @property
    def repo(self) -> InMemoryGroupingRepository:
        return self.uow.repo

    async def scrape(
        self, store: str, prices: Mapping[str, int], *, at: datetime, unavailable: Collection[str] = ()
    ) -> None:
        """Fold one page of a store's prices, observed and received at `at`."""
        observations = tuple(
            PriceObservation(sku=sku, price_cents=cents, available=sku not in unavailable, observed_at=at)
            for sku, cents in prices.items()
        )
        batch = PricesScrapedPayload(chain=CHAIN, store_id=store, source="scrape", observations=observations)
        async with self.uow() as work:
            await service_layer.fold_prices(work, [batch], now=at, policy=POLICY)

    async def cycle(self, now: datetime) -> CycleReport:
        async with self.uow() as work:
            return await service_layer.run_cycle(work, now=now, policy=POLICY, memory=self.memory)

    async def group_of(self, store: str) -> GroupRow | None:
        group_id = self.repo.stores[(CHAIN, store)].group_id
        return None if group_id is None else await self.repo.group(group_id=group_id)

    async def layout(self) -> dict[str, tuple[str, ...]]:
        """Return each group's anchor -> members."""
        return {g.anchor_store_id: g.members for g in (await self.repo.groups(chain=CHAIN)).values()}

    async def formed(self, *stores: str, at: datetime = T0) -> None:
        """Scrape stores alike at `at` and let a cycle group them: the first is the anchor."""
        for store in stores:
            await self.scrape(store, ZONE_A, at=at)
        await self.cycle(at + QUIET)
        assert await self.layout() == {stores[0]: stores[1:]}


def _kinds(report: CycleReport) -> list[str]:
    """Name the events of a cycle: the reason of a group change or a re-scrape, or 'pruned'."""
    names: list[str] = []
    for event in report.events:
        if isinstance(event, StoreGroupChanged | RescrapeRequested):
            names.append(event.payload.reason)
        else:
            assert isinstance(event, PricesPruned)
            names.append("pruned")
    return names


async def test_quiet_unplaced_stores_form_groups_and_members_copies_equal_to_the_anchors_go() -> None:
    g = Grouping()
    await g.scrape("s1", ZONE_A, at=T0)
    await g.scrape("s2", ZONE_A, at=T0)
    # One price of its own and one product out of stock: 59 of 60 equal prices still match.
    await g.scrape("s3", _repriced(ZONE_A, ["p00"]), at=T0, unavailable=["p01"])
    await g.scrape("s4", ZONE_B, at=T0)

    assert (await g.cycle(T0 + timedelta(seconds=1))).events == [], "the chain is not quiet yet"
    report = await g.cycle(T0 + QUIET)

    assert await g.layout() == {"s1": ("s2", "s3"), "s4": ()}
    assert (report.formed, report.checked, report.pruned_rows) == (2, 0, 60 + 58)
    assert (report.pairs_possible, report.pairs_compared) == (6, 2)
    formed = g.uow.published_of(StoreGroupChanged)
    assert sorted((e.payload.anchor_store_id, e.payload.member_store_ids) for e in formed) == [
        ("s1", ("s2", "s3")),
        ("s4", ()),
    ]
    assert {(e.payload.reason, e.payload.group_version) for e in formed} == {("formed", 1)}
    [pruned] = g.uow.published_of(PricesPruned)
    assert pruned.payload.store_ids == ("s2", "s3")
    assert (pruned.payload.anchor_store_id, pruned.payload.rows_pruned) == ("s1", 118)
    assert pruned.payload.verified_at == T0 + QUIET
    assert g.repo.held(CHAIN, "s1") == ZONE_A
    assert g.repo.held(CHAIN, "s2") == {}
    assert g.repo.held(CHAIN, "s3") == {"p00": 107, "p01": 101}, "its own price and availability stay"
    assert g.repo.stores[(CHAIN, "s3")].checked_at == T0 + QUIET
    assert g.uow.commits == 6, "every scrape and cycle in a unit of work of its own"


async def test_a_new_store_that_matches_an_anchor_joins_its_group() -> None:
    g = Grouping()
    await g.formed("s1", "s2")
    t1 = T0 + timedelta(hours=1)
    await g.scrape("s5", ZONE_A, at=t1)

    report = await g.cycle(t1 + QUIET)

    assert await g.layout() == {"s1": ("s2", "s5")}
    assert (report.joined, report.formed) == (1, 0)
    assert _kinds(report) == ["member_joined", "pruned"]
    joined = report.events[0]
    assert isinstance(joined, StoreGroupChanged)
    assert (joined.payload.group_version, joined.payload.member_store_ids) == (2, ("s2", "s5"))
    assert g.repo.held(CHAIN, "s5") == {}


async def test_groups_that_come_to_match_merge_into_the_larger_and_their_members_are_rechecked() -> None:
    g = Grouping()
    for store in ("a1", "a2"):
        await g.scrape(store, ZONE_A, at=T0)
    for store in ("b1", "b2", "b3"):  # a special of their own on 3 products: 57 of 60 equal, apart
        await g.scrape(store, _repriced(ZONE_A, ["p00", "p01", "p02"]), at=T0)
    await g.cycle(T0 + QUIET)
    assert await g.layout() == {"a1": ("a2",), "b1": ("b2", "b3")}
    [group_a] = [
        group for group in (await g.repo.groups(chain=CHAIN)).values() if group.anchor_store_id == "a1"
    ]
    [group_b] = [
        group for group in (await g.repo.groups(chain=CHAIN)).values() if group.anchor_store_id == "b1"
    ]

    t1 = T0 + timedelta(hours=1)
    await g.scrape("b1", ZONE_A, at=t1)  # the special ends: 3 of 60 prices change, not a move
    report = await g.cycle(t1 + QUIET)

    assert await g.layout() == {"b1": ("a1", "a2", "b2", "b3")}, "the larger group survives"
    assert report.merged == 1
    assert _kinds(report) == ["dissolved", "health_check", "health_check", "health_check", "merged", "pruned"]
    dissolved, *rechecks, merged, pruned = report.events
    assert isinstance(dissolved, StoreGroupChanged)
    assert dissolved.payload.group_id == group_a.group_id
    assert (dissolved.payload.merged_into, dissolved.payload.group_version) == (group_b.group_id, 2)
    assert dissolved.payload.member_store_ids == ()
    assert [
        (e.payload.store_id, e.payload.group_id) for e in rechecks if isinstance(e, RescrapeRequested)
    ] == [
        ("b2", group_b.group_id),
        ("b3", group_b.group_id),
        ("a2", group_b.group_id),
    ], "members on both sides were confirmed against their own anchor only"
    assert isinstance(merged, StoreGroupChanged)
    assert merged.payload.group_version == 2
    assert isinstance(pruned, PricesPruned)
    assert (pruned.payload.store_ids, pruned.payload.rows_pruned) == (("a1", "a2"), 60)
    assert await g.repo.group(group_id=group_a.group_id) is None


async def test_a_member_that_drifted_is_split_off_and_one_that_did_not_is_verified_and_pruned() -> None:
    g = Grouping()
    await g.formed("s1", "s2", "s3")
    t1 = T0 + timedelta(hours=1)
    await g.scrape("s2", _repriced(ZONE_A, ["p00", "p01"]), at=t1)  # 58 of 60: below 98%
    await g.scrape("s3", _repriced(ZONE_A, ["p00"]), at=t1)  # 59 of 60: still its anchor's
    report = await g.cycle(t1 + QUIET)

    assert (report.checked, report.split, report.formed) == (2, 1, 1)
    # s3's 59 prices its anchor charges were answered as they came: pruned on arrival.
    assert _kinds(report) == ["split", "pruned", "formed"]
    assert [e.payload.rows_pruned for e in report.events if isinstance(e, PricesPruned)] == [59]
    split = report.events[0]
    assert isinstance(split, StoreGroupChanged)
    assert (split.payload.anchor_store_id, split.payload.member_store_ids) == ("s1", ("s3",))
    assert split.payload.group_version == 2
    assert await g.layout() == {"s1": ("s3",), "s2": ()}, "it matches nobody: a group of its own"
    assert g.repo.held(CHAIN, "s3") == {"p00": 107}
    assert {s: g.repo.stores[(CHAIN, s)].checked_at for s in ("s2", "s3")} == dict.fromkeys(
        ("s2", "s3"), t1 + QUIET
    )
    assert (await g.cycle(t1 + 2 * QUIET)).events == [], "nothing is due any more"


async def test_a_members_prices_its_anchor_charges_are_answered_not_stored_and_its_check_counts_them() -> (
    None
):
    g = Grouping()
    await g.formed("s1", "s2")
    t1 = T0 + timedelta(hours=1)
    await g.scrape("s2", {**ZONE_A, "p00": 999}, at=t1)  # an exception of its own: stored
    assert g.repo.held(CHAIN, "s2") == {"p00": 999}
    assert g.repo.stores[(CHAIN, "s2")].answered_since_check == 59
    report = await g.cycle(t1 + QUIET)
    assert (report.checked, report.split) == (1, 0), "59 of 60 equal, as if all were stored"

    t2 = t1 + timedelta(hours=1)
    await g.scrape("s2", ZONE_A, at=t2)  # back to its anchor's price: its own row goes
    assert g.repo.held(CHAIN, "s2") == {}
    await g.scrape("s1", _repriced(ZONE_A, ["p00"]), at=t2 + timedelta(minutes=1))
    assert g.repo.held(CHAIN, "s2") == {}, "an anchor answers its members' prices from its own"


async def test_a_members_prices_are_stored_when_its_anchors_are_stale_or_lag_behind() -> None:
    g = Grouping()
    await g.formed("s1", "s2", "s3")
    t1 = T0 + POLICY.anchor_lag + timedelta(hours=1)  # the anchor's prices lag the member's by a day
    await g.scrape("s2", ZONE_A, at=t1)
    assert g.repo.held(CHAIN, "s2") == ZONE_A, "judged later against a fresher anchor, so kept"
    t2 = T0 + POLICY.freshness + timedelta(hours=1)  # and out of the week's window
    await g.scrape("s3", ZONE_A, at=t2)
    assert g.repo.held(CHAIN, "s3") == ZONE_A
    assert {g.repo.stores[(CHAIN, s)].answered_since_check for s in ("s2", "s3")} == {0}


async def test_a_split_member_keeps_as_its_own_what_its_anchor_answered_for_it() -> None:
    g = Grouping()
    await g.formed("s1", "s2")
    t1 = T0 + timedelta(hours=1)
    drifted = _repriced(ZONE_A, ["p00", "p01"])
    await g.scrape("s2", drifted, at=t1)
    assert g.repo.held(CHAIN, "s2") == {"p00": 107, "p01": 108}

    report = await g.cycle(t1 + QUIET)

    assert report.split == 1
    assert g.repo.held(CHAIN, "s2") == drifted, "its 58 answered prices are its own rows again"


async def test_a_stale_anchor_is_asked_for_once_and_its_members_judged_once_it_is_back() -> None:
    g = Grouping()
    await g.formed("s1", "s2", "s3")
    t1 = T0 + timedelta(days=8)  # the anchor's prices are out of the week's window
    await g.scrape("s2", ZONE_A, at=t1)
    await g.scrape("s3", ZONE_A, at=t1)

    report = await g.cycle(t1 + QUIET)

    assert (report.rescrapes, report.checked) == (1, 0)
    [asked] = report.events
    assert isinstance(asked, RescrapeRequested)
    assert (asked.payload.store_id, asked.payload.reason, asked.payload.last_observed_at) == (
        "s1",
        "stale_anchor",
        T0,
    )
    assert all(g.repo.stores[(CHAIN, s)].check_due for s in ("s2", "s3")), "judged later, not now"

    t2 = t1 + timedelta(hours=1)
    await g.scrape("s2", ZONE_A, at=t2)  # another member scrape while the anchor is stale
    assert (await g.cycle(t2 + QUIET)).events == [], "one request, not one per member scrape"

    t3 = t2 + timedelta(hours=1)
    await g.scrape("s1", ZONE_A, at=t3)  # the anchor is scraped again
    report = await g.cycle(t3 + QUIET)

    assert (report.rescrapes, report.checked) == (0, 2)
    assert _kinds(report) == ["pruned"]
    assert await g.layout() == {"s1": ("s2", "s3")}
    assert len(g.uow.published_of(RescrapeRequested)) == 1


async def test_a_member_with_too_few_common_prices_is_not_judged_but_its_equal_rows_go() -> None:
    g = Grouping()
    await g.formed("s1", "s2")
    t1 = T0 + timedelta(hours=1)
    await g.scrape("s2", {"p00": 100, "p01": 101, "p02": 102, "p03": 999}, at=t1)

    report = await g.cycle(t1 + QUIET)

    assert report.events == [], "no verdict, nothing to announce"
    # Its three prices equal to the anchor's were answered by it as they came: pruned on arrival.
    assert (report.checked, report.split, report.pruned_rows) == (0, 0, 3)
    assert g.repo.held(CHAIN, "s2") == {"p03": 999}
    member = g.repo.stores[(CHAIN, "s2")]
    assert (member.check_due, member.checked_at, member.group_id is not None) == (False, T0 + QUIET, True)
    assert member.answered_since_check == 0, "counted toward this check only"
    assert (await g.cycle(t1 + 2 * QUIET)).pruned_rows == 0, "not due any more"


async def test_an_anchor_whose_prices_mostly_change_has_its_members_rechecked_once() -> None:
    g = Grouping()
    await g.formed("s1", "s2", "s3")
    group = await g.group_of("s1")
    assert group is not None

    t1 = T0 + timedelta(hours=1)
    await g.scrape("s1", _repriced(ZONE_A, _every(10), cents=30), at=t1)  # a week's specials: 6 of 60
    assert (await g.cycle(t1 + QUIET)).rescrapes == 0

    t2 = t1 + timedelta(hours=1)
    await g.scrape("s1", ZONE_B, at=t2)  # another zone's prices
    assert (await g.cycle(t2 + timedelta(seconds=1))).rescrapes == 0, "its scrape is not quiet yet"
    report = await g.cycle(t2 + QUIET)
    assert [
        (e.payload.store_id, e.payload.reason, e.payload.group_id)
        for e in report.events
        if isinstance(e, RescrapeRequested)
    ] == [
        ("s2", "health_check", group.group_id),
        ("s3", "health_check", group.group_id),
    ]
    assert (await g.cycle(t2 + 2 * QUIET)).rescrapes == 0, "asked once"

    t3 = t2 + timedelta(hours=1)
    for member in ("s2", "s3"):  # the re-scrapes: they still charge the old zone's prices
        await g.scrape(member, ZONE_A, at=t3)
    report = await g.cycle(t3 + QUIET)
    assert report.split == 2
    assert await g.layout() == {"s1": (), "s2": ("s3",)}, "split off, they group again by themselves"


async def test_a_busy_chain_is_regrouped_every_minute_with_its_stores_gone_quiet() -> None:
    g = Grouping()
    await g.scrape("s1", ZONE_A, at=T0)
    await g.scrape("s2", ZONE_A, at=T0)
    formed_at = []
    for second in range(1, 130):  # s3 sends prices every second: the chain is never quiet
        now = T0 + timedelta(seconds=second)
        await g.scrape("s3", ZONE_A, at=now)
        if (await g.cycle(now + timedelta(seconds=0.5))).events:
            formed_at.append(second)
    # The wait counts from the first cycle that saw the chain (second 1.5).
    assert formed_at == [61]
    assert await g.layout() == {"s1": ("s2",)}, "s3 is still busy, not judged"

    report = await g.cycle(T0 + timedelta(seconds=129 + 3))  # s3 goes quiet
    assert (report.joined, await g.layout()) == (1, {"s1": ("s2", "s3")})


async def test_a_regroup_every_minute_of_a_busy_chain_takes_in_stores_that_went_quiet_since() -> None:
    g = Grouping()
    await g.scrape("s1", ZONE_A, at=T0)
    await g.scrape("s2", ZONE_A, at=T0)
    joined_at = []
    for second in range(1, 125):
        now = T0 + timedelta(seconds=second)
        await g.scrape("s3" if second < 70 else "s4", ZONE_A, at=now)  # s3 goes quiet at 70 s
        report = await g.cycle(now + timedelta(seconds=0.5))
        if report.formed or report.joined:
            joined_at.append((second, report.formed, report.joined))
    assert joined_at == [(61, 1, 0), (121, 0, 1)], "a regroup a minute, never more often"
    assert await g.layout() == {"s1": ("s2", "s3")}


def test_a_batch_is_staged_as_each_stores_newest_price_per_product() -> None:
    def page(store: str, at: datetime, *prices: tuple[str, int]) -> PricesScrapedPayload:
        observations = tuple(PriceObservation(sku=s, price_cents=c, observed_at=at) for s, c in prices)
        return PricesScrapedPayload(chain=CHAIN, store_id=store, source="scrape", observations=observations)

    later = T0 + timedelta(hours=1)
    rows = newest_rows(
        [
            page("s1", later, ("p1", 300), ("p2", 310)),
            page("s1", T0, ("p1", 200), ("p3", 220)),  # later in the batch but older: p1 stays 300
            page("s2", T0, ("p1", 200)),  # another store: its own row
            page("s2", later, ("p1", 400)),
        ]
    )
    assert sorted((r[1], r[2], r[3], r[6]) for r in rows) == [
        ("s1", "p1", 300, later),
        ("s1", "p2", 310, later),
        ("s1", "p3", 220, T0),
        ("s2", "p1", 400, later),
    ]


def test_a_members_row_is_answered_only_by_its_anchors_newest_fresh_and_equal_shelf() -> None:
    later, lag = T0 + timedelta(hours=1), POLICY.anchor_lag

    def row(store: str, sku: str, cents: int, at: datetime, *, available: bool = True) -> StagedRow:
        return StagedRow(CHAIN, store, sku, cents, None, available, at)

    stored = {
        (CHAIN, "a", "p1"): Shelf(100, None, True, T0),
        (CHAIN, "a", "p2"): Shelf(200, None, True, T0),
        (CHAIN, "a", "p3"): Shelf(300, None, True, T0),
        (CHAIN, "a", "p4"): Shelf(400, None, True, T0 - POLICY.freshness),  # out of the window
        (CHAIN, "m", "p5"): Shelf(500, None, True, later),  # the member's own, newer than its sighting
        (CHAIN, "a", "p5"): Shelf(500, None, True, T0),
    }
    rows = [
        row("a", "p2", 222, later),  # the anchor reprices p2 in the same batch
        row("m", "p1", 100, later),  # equal: answered
        row("m", "p2", 200, later),  # the anchor's old price, not its newest
        row("m", "p3", 300, later, available=False),  # out of stock here: not the same shelf
        row("m", "p4", 400, later),  # the anchor's price is too old to answer
        row("m", "p5", 500, T0),  # older than what the member holds: the merge ignores it
        row("m", "p6", 600, T0 + lag + timedelta(hours=2)),  # the anchor has no price of it
        row("x", "p1", 100, later),  # not a member
    ]
    answered = answered_by_anchors(
        rows,
        anchor_of={(CHAIN, "m"): "a"},
        stored=stored,
        fresh_since=later - POLICY.freshness,
        anchor_lag=lag,
    )
    assert [(r.store_id, r.sku) for r in answered] == [("m", "p1")]
    lagging = row("m", "p1", 100, T0 + lag + timedelta(hours=1))
    assert not answered_by_anchors(
        [lagging], anchor_of={(CHAIN, "m"): "a"}, stored=stored, fresh_since=T0, anchor_lag=lag
    ), "the anchor's price lags the member's sighting by more than a day"
    assert answered_by_anchors(
        [row("a", "p2", 200, later), row("m", "p2", 200, later)],
        anchor_of={(CHAIN, "m"): "a"},
        stored=stored,
        fresh_since=T0,
        anchor_lag=lag,
    ), "the anchor's staged price is its newest"
