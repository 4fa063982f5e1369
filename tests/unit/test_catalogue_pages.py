"""The catalogue folds pages seen whole by their sweep: a page seen again unchanged moves one row, a
store's first page is copied in from its columns, and every answer stays as prices one by one give it."""

import random
from datetime import UTC, datetime, timedelta

import pytest

from catalogue import service_layer
from catalogue.domain.answering import Shelf
from catalogue.repository import PageState
from contracts.events import PriceObservation
from contracts.events.v1 import (
    MultiBuy,
    PriceColumns,
    PricesScrapedPayload,
    StatedUnitPrice,
    StoreGroupChangedPayload,
)
from servicekit.kept_reads import KeptReads
from servicekit.sweeps import SeenPage, page_of, seen_pages
from tests.fakes.catalogue import InMemoryCatalogueRepository
from tests.fakes.unit_of_work import FakeUnitOfWork
from tests.integration.test_sweeps_on_postgres import Shelves, _page
from tests.unit.test_price_columns import _as_columns, _observation

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
PAGE = [f"p{i}" for i in range(5)]
STORES = ("s1", "s2", "a")
ANCHOR, MEMBERS = "a", ("m", "n", "o")


def _group(version: int, *members: str, reason: str = "formed") -> StoreGroupChangedPayload:
    return StoreGroupChangedPayload(
        chain="c",
        group_id="g1",
        group_version=version,
        anchor_store_id=ANCHOR,
        member_store_ids=members,
        reason=reason,  # type: ignore[arg-type]
    )


Step = list[PricesScrapedPayload] | StoreGroupChangedPayload


def sweep_rounds(seed: int) -> list[Step]:
    """Batches of pages (and group changes) that hold, move, end and let go of sweeps."""
    rng = random.Random(seed)
    shelf = Shelves(
        {store: {sku: _observation(rng, sku, NOW) for sku in [*PAGE, "extra"]} for store in STORES}
    )
    # The members show what their anchor does, m and n but for one price each.
    shelf |= {member: dict(shelf[ANCHOR]) for member in MEMBERS}
    shelf["m"]["p4"] = _observation(rng, "p4", NOW).model_copy(update={"price_cents": 999})
    shelf["n"]["p2"] = _observation(rng, "p2", NOW).model_copy(update={"price_cents": 888})
    page, change = shelf.page, shelf.change

    everyone = (*STORES, *MEMBERS)
    rounds: list[Step] = [[_page(s, page(s), 144) for s in everyone]]  # first pages: copied in
    rounds.append([_page(s, page(s), 120) for s in everyone])  # the same again: sweeps move
    rounds.append([_page(s, page(s), 120) for s in everyone])  # the same again at the same moment
    change("s1", "p1")
    rounds += [[_page(s, page(s), 96) for s in everyone], [_page(s, page(s), 72) for s in everyone]]
    change("s1", "p2")
    rounds.append([_page("s1", page("s1"), 84)])  # late: older than what is held
    rounds.append([_page("s1", page("s1", [*PAGE, "extra"]), 48), _page("s2", page("s2"), 48)])
    rounds.append([_page(s, page(s), 24) for s in STORES])  # s1's first page again
    rounds.append([_page("s1", page("s1"), 20, late=2)])  # seen over time: no sweep
    rounds.append([_page(s, page(s), 12) for s in STORES])
    change("s2", "p3")
    rounds.append([_page("s2", page("s2"), 12)])  # another label at the same moment: the first stands
    change("s2", "p0")
    rounds.append([_page("s2", page("s2"), 6), _page("s2", page("s2"), 5)])  # a store twice
    rounds.append([_page(s, page(s), 4.5) for s in STORES])
    # Placed, the members' prices their anchor shows go (o's whole store), the rest held as they were.
    rounds.append(_group(1, *MEMBERS))
    shelf["m"]["p4"] = shelf[ANCHOR]["p4"]  # m's own price (held, seen since) ends: its anchor answers
    placed = (*STORES, "m", "o")  # n is not seen while placed
    rounds.append([_page(s, page(s), 4) for s in placed])  # members' pages, with their anchor's
    change("m", "p3")  # a price of m's own
    rounds.append([_page("m", page("m"), 3.5)])  # a member's page alone
    change(ANCHOR, "p0")
    rounds.append([_page(s, page(s), 3) for s in placed])
    rounds.append([_page(s, page(s), 2.5) for s in placed])
    rounds.append(_group(2, reason="dissolved"))  # their own again: n's page as its sweep last held it
    rounds.append([_page(member, page(member), 2) for member in MEMBERS])
    rounds.append([_page(s, page(s), 1) for s in everyone])
    return rounds


SHEETS = {name: [f"{name}{i}" for i in range(4)] for name in "pqr"}
"""A store's pages (categories) by name: each its own products."""
SHEET_STORES = ("s1", "s2", ANCHOR, "m")


def page_rounds(seed: int) -> list[Step]:
    """Batches in which a store sends several pages at once (as a scrape does, one event per page):
    first, unchanged, one changed, at different moments, late, new, overlapping, the same twice, an
    anchor's with its member's. The rounds are numbered as the tests count what each writes."""
    rng = random.Random(seed)
    skus = [sku for name in SHEETS for sku in SHEETS[name]]
    shelf = Shelves(
        {store: {sku: _observation(rng, sku, NOW) for sku in skus} for store in ("s1", "s2", ANCHOR)}
    )
    shelf["m"] = dict(shelf[ANCHOR])  # the member shows what its anchor does, but for one price
    shelf["m"]["q1"] = _observation(rng, "q1", NOW).model_copy(update={"price_cents": 777})
    change = shelf.change

    def page(store: str, name: str, hours_ago: float, skus: list[str] | None = None) -> PricesScrapedPayload:
        return _page(store, shelf.page(store, skus or SHEETS[name]), hours_ago)

    def sent(hours_ago: float) -> list[PricesScrapedPayload]:
        return [
            page(s, n, hours_ago)
            for s, names in (("s1", "pq"), ("s2", "pqr"), (ANCHOR, "pq"), ("m", "pq"))
            for n in names
        ]

    rounds: list[Step] = [sent(144)]  # 0: new stores' first prices over two or three pages: copied
    rounds.append(sent(120))  # 1: every page unchanged: each sweep moves
    change("s1", "q1")
    change("s2", "p0")
    rounds.append(sent(96))  # 2: one page of a store changed, the others unchanged
    # 3: two pages of a store at different moments (s2's q not seen)
    rounds.append([page("s1", "p", 72), page("s1", "q", 70), page("s2", "p", 66), page("s2", "r", 72)])
    # 4: a late page (an old label, older than its sweep) beside one unchanged
    old = shelf["s1"]["p2"].model_copy(update={"price_cents": 111})
    rounds.append(
        [_page("s1", {**{k: shelf["s1"][k] for k in SHEETS["p"]}, "p2": old}, 80), page("s1", "q", 48)]
    )
    # 5: a store's new page (more products) beside its pages unchanged
    rounds.append([page("s1", n, 40) for n in "pqr"])
    # 6: two pages sharing a product: that store's are merged as one by one; another store's not
    rounds.append(
        [page("s1", "p", 36), page("s1", "q", 36, [*SHEETS["q"], "p0"]), *(page("s2", n, 36) for n in "pq")]
    )
    rounds.append([page("s1", n, 30) for n in "pqr"])  # 7: s1's pages held again
    rounds.append([page("s1", n, 24) for n in "pqr"])  # 8: and moved
    rounds.append([page("s2", "p", 20), page("s2", "p", 19), page("s2", "q", 20)])  # 9: a page twice
    rounds.append(_group(1, "m"))  # the member's prices its anchor shows go
    change(ANCHOR, "q2")
    shelf["m"]["q2"] = shelf[ANCHOR]["q2"]
    # The anchor's pages (one changed) with its member's: judged against what the anchor shows after.
    rounds.append([page(s, n, 12) for s in (ANCHOR, "m") for n in "pq"])
    rounds.append([page(s, n, 6) for s in (ANCHOR, "m") for n in "pq"])  # the anchor's sweeps move
    rounds.append(_group(2, reason="dissolved"))
    rounds.append(sent(2))
    rounds.append(sent(1))
    return rounds


async def fold_rounds(uow: object, rounds: list[Step], *, columns: bool, each: object = None) -> None:
    """Fold the rounds (pages as columns or one by one) in a unit of work each; `each` after each."""
    shelves = KeptReads[Shelf]()
    for step in rounds:
        if isinstance(step, StoreGroupChangedPayload):
            await service_layer.change_group(uow, step)  # type: ignore[arg-type]
        else:
            batch = [_as_columns(p) for p in step] if columns else step
            await service_layer.fold_prices(uow, batch, anchor_shelves=shelves)  # type: ignore[arg-type]
        if callable(each):
            await each()


@pytest.mark.parametrize("seed", range(4))
async def test_pages_fold_through_sweeps_as_prices_one_by_one(seed: int) -> None:
    folded: list[tuple[list[object], int]] = []
    for by_columns in (False, True):
        uow = FakeUnitOfWork(InMemoryCatalogueRepository())
        shown: list[object] = []

        async def each(
            uow: FakeUnitOfWork[InMemoryCatalogueRepository] = uow, shown: list[object] = shown
        ) -> None:
            shown.append((dict(uow.repo.prices), dict(uow.repo.history)))

        async with uow:
            await fold_rounds(uow, sweep_rounds(seed), columns=by_columns, each=each)
        folded.append((shown, uow.repo.sweeping.moved))
    (as_rows, not_moved), (as_columns, moved) = folded
    for after, (rows, columns) in enumerate(zip(as_rows, as_columns, strict=True)):
        assert columns == rows, f"after round {after}"
    assert not_moved == 0
    assert moved >= 8, "not vacuous: pages seen again unchanged moved their sweep"


async def test_a_page_seen_again_unchanged_writes_no_price() -> None:
    uow = FakeUnitOfWork(InMemoryCatalogueRepository())
    rng = random.Random(1)
    prices = {sku: _observation(rng, sku, NOW) for sku in PAGE}
    async with uow:
        await service_layer.fold_prices(uow, [_as_columns(_page("s1", prices, 48))])
        written = dict(uow.repo.prices)
        await service_layer.fold_prices(uow, [_as_columns(_page("s1", prices, 24))])
    assert uow.repo.sweeping.moved == 1
    assert {key: row.observed_at for key, row in uow.repo.prices.items()} == dict.fromkeys(
        written, NOW - timedelta(hours=24)
    )
    assert [len(runs) for runs in uow.repo.history.values()] == [1] * len(PAGE)


def _seen(store: str = "s1", at: datetime = NOW, shelves: int = 7) -> SeenPage:
    return SeenPage(store, page_of(PAGE), PAGE, at, shelves)


def test_how_each_page_is_folded_follows_where_its_store_and_sweep_stand() -> None:
    earlier, later = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    pages = dict(enumerate([_seen(shelves=7)] * 8))
    states = [
        PageState(stocked=False, seen_at=None, shelves=None),  # a first page: copied, held
        PageState(stocked=False, seen_at=later, shelves=7),  # a first page older than its sweep
        PageState(stocked=True, seen_at=earlier, shelves=7),  # unchanged: moves
        PageState(stocked=True, seen_at=NOW, shelves=7),  # unchanged, at the same moment: moves (nothing)
        PageState(stocked=True, seen_at=later, shelves=7),  # late: merged, not held
        PageState(stocked=True, seen_at=earlier, shelves=8),  # changed: merged, held
        PageState(stocked=True, seen_at=earlier, shelves=None),  # its sweep let go of a row: merged, held
        PageState(stocked=True, seen_at=None, shelves=None),  # no sweep yet: merged, held
    ]
    ways = service_layer.page_ways(pages, states)
    assert ways.copying == [0, 1]
    assert ways.moving == [2, 3]
    assert ways.older == {0, 2, 5, 6, 7}


def test_only_a_page_of_its_own_anchors_store_listed_once_may_be_held() -> None:
    rng = random.Random(2)
    prices = {sku: _observation(rng, sku, NOW) for sku in PAGE}
    batches = [
        _as_columns(_page("s1", prices, 1)),
        _as_columns(_page("s2", prices, 1)),
        _as_columns(_page("s2", prices, 2)),  # s2 twice
        _as_columns(_page("m", prices, 1)),  # a member
        _page("s3", prices, 1),  # one by one
        _as_columns(_page("s4", prices, 1, late=1)),  # seen over time
    ]
    assert list(service_layer.whole_pages(batches, {("c", "m"): "a"})) == [0]


def test_a_pages_rows_built_from_its_columns_are_its_prices_rows() -> None:
    rng = random.Random(3)
    prices = {sku: _observation(rng, sku, NOW) for sku in [f"p{i}" for i in range(40)]}
    prices["p0"] = prices["p0"].model_copy(
        update={
            "unit_price": StatedUnitPrice(cents=10, quantity=100, unit="g", text="10c per 100g"),
            "multibuy": MultiBuy(quantity=2, total_cents=500),
        }
    )
    batch = _as_columns(_page("s1", prices, 1))
    columns = batch.prices
    assert isinstance(columns, PriceColumns)
    page = seen_pages([batch])[0]
    assert page is not None
    rows = list(service_layer.price_records("c", page, columns, sweep=page.page))
    expected = [
        (*service_layer.price_row("c", "s1", o), o.observed_at, page.page) for o in columns.sightings()
    ]
    assert rows == expected
    # Columns the page left out hold their defaults too.
    plain = _as_columns(_page("s1", {"x": PriceObservation(sku="x", price_cents=5, observed_at=NOW)}, 0))
    assert plain.prices is not None
    seen = seen_pages([plain])[0]
    assert seen is not None
    assert list(service_layer.price_records("c", seen, plain.prices, sweep=None)) == [
        (*service_layer.price_row("c", "s1", o), NOW, None) for o in plain.prices.sightings()
    ]


async def test_several_pages_of_a_store_at_once_each_take_their_way_as_prices_one_by_one() -> None:
    for seed in range(4):
        folded: list[tuple[list[object], list[int]]] = []
        for by_columns in (False, True):
            uow = FakeUnitOfWork(InMemoryCatalogueRepository())
            shown: list[object] = []
            moved: list[int] = []

            async def each(
                uow: FakeUnitOfWork[InMemoryCatalogueRepository] = uow,
                shown: list[object] = shown,
                moved: list[int] = moved,
            ) -> None:
                shown.append((dict(uow.repo.prices), dict(uow.repo.history)))
                moved.append(uow.repo.sweeping.moved - sum(moved))

            async with uow:
                await fold_rounds(uow, page_rounds(seed), columns=by_columns, each=each)
            folded.append((shown, moved))
        (as_rows, not_moved), (as_columns, moved) = folded
        for after, (rows, columns) in enumerate(zip(as_rows, as_columns, strict=True)):
            assert columns == rows, f"seed {seed}, after round {after}"
        assert sum(not_moved) == 0
        # Each page of a store takes its own way: all nine pages moved, then those unchanged, ...
        assert moved[:10] == [0, 9, 7, 4, 1, 2, 2, 1, 3, 0], f"seed {seed}"


def test_a_stores_pages_apart_are_each_held_and_overlapping_ones_none() -> None:
    rng = random.Random(4)
    shelf = {sku: _observation(rng, sku, NOW) for name in SHEETS for sku in SHEETS[name]}

    def page(store: str, skus: list[str], hours_ago: float = 1) -> PricesScrapedPayload:
        return _as_columns(_page(store, {sku: shelf[sku] for sku in skus}, hours_ago))

    batches = [
        page("s1", SHEETS["p"]),
        page("s1", SHEETS["q"], 2),  # s1's pages apart, at different moments: each held
        page("s2", SHEETS["p"]),
        page("s2", [*SHEETS["q"], "p0"]),  # a product on two of s2's pages: neither
        page("s3", SHEETS["p"]),
        page("s3", SHEETS["p"], 2),  # s3's same page twice: neither
        page("s4", SHEETS["p"]),
        _page("s4", {sku: shelf[sku] for sku in SHEETS["q"]}, 1),  # one of s4's pages one by one: neither
        page("s5", SHEETS["r"]),
        page("m", SHEETS["p"]),
        page("m", SHEETS["q"]),  # a member's: none
    ]
    pages = service_layer.whole_pages(batches, {("c", "m"): "a"})
    assert list(pages) == [0, 1, 8]
    assert [list(page.skus) for page in pages.values()] == [SHEETS["p"], SHEETS["q"], SHEETS["r"]]
