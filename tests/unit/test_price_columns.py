"""Prices sent as columns fold exactly like the same prices sent one by one, in every service, and a
member's page judged a column at a time is answered exactly as price by price."""

import copy
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bargains import service_layer as bargains
from bargains.domain import answering as bargains_answering
from bargains.domain.bargains import Policy
from catalogue import service_layer as catalogue
from catalogue.domain import answering as catalogue_answering
from contracts.events.v1 import (
    MultiBuy,
    PageRef,
    PriceColumns,
    PriceObservation,
    PricesScrapedPayload,
    Sighting,
    StatedUnitPrice,
    StoreGroupChangedPayload,
)
from grouping import repository as grouping_repository
from grouping import service_layer as grouping
from servicekit.pages import judgeable
from tests.fakes.bargains import InMemoryBargainsRepository
from tests.fakes.catalogue import InMemoryCatalogueRepository
from tests.fakes.grouping import POLICY as GROUPING_POLICY
from tests.fakes.grouping import InMemoryGroupingRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
ANCHOR, MEMBERS, ALONE = "a1", ("m1", "m2"), "s3"
SKUS = [f"p{i}" for i in range(12)]
GROUP = StoreGroupChangedPayload(
    chain="c",
    group_id="g1",
    group_version=1,
    anchor_store_id=ANCHOR,
    member_store_ids=MEMBERS,
    reason="formed",
)


def _observation(rng: random.Random, sku: str, at: datetime) -> PriceObservation:
    """A price with the label's parts each present now and then, as real pages have them."""
    price = rng.choice([250, 300, 450])
    return PriceObservation(
        sku=sku,
        price_cents=price,
        was_price_cents=rng.choice([None, None, price + 100]),
        available=rng.random() > 0.1,
        observed_at=at,
        unit_price=rng.choice(
            [None, StatedUnitPrice(cents=price // 2, quantity=100, unit="g", text="$ per 100g")]
        ),
        multibuy=rng.choice([None, None, MultiBuy(quantity=2, total_cents=price * 2 - 50)]),
        member_price_cents=rng.choice([None, None, price - 20]),
        sold_by=rng.choice(["each", "each", "kg"]),
    )


def _world(seed: int) -> list[list[PricesScrapedPayload]]:
    """Five days of every store's pages, members mostly at their anchor's price; some pages seen over time."""
    rng = random.Random(seed)
    batches: list[list[PricesScrapedPayload]] = []
    for day in range(5, 0, -1):
        at = NOW - timedelta(days=day)
        zone = {sku: _observation(rng, sku, at) for sku in SKUS}
        pages = []
        for store in (ANCHOR, *MEMBERS, ALONE):
            own = rng.random() < 0.3 or store == ALONE
            rows = tuple(
                (
                    _observation(rng, sku, at)
                    if own and rng.random() < 0.5
                    else zone[sku].model_copy(update={"observed_at": at})
                )
                for sku in SKUS
            )
            if rng.random() < 0.3:  # a file's rows, each seen at its own moment
                rows = tuple(
                    o.model_copy(update={"observed_at": at - timedelta(minutes=rng.randint(0, 90))})
                    for o in rows
                )
            pages.append(
                PricesScrapedPayload(
                    chain="c",
                    store_id=store,
                    source="scrape",
                    page=PageRef(category="dairy", page=1),
                    observations=rows,
                )
            )
        rng.shuffle(pages)
        batches += [pages[:2], pages[2:]]
    return batches


def _as_columns(batch: PricesScrapedPayload) -> PricesScrapedPayload:
    """The same batch, its prices as columns."""
    return batch.model_copy(update={"observations": (), "prices": PriceColumns.of(batch.observations)})


Fold = Callable[[Any, list[PricesScrapedPayload]], Awaitable[None]]


async def _bargains(uow: Any, batches: list[PricesScrapedPayload]) -> None:
    await bargains.fold_prices(uow, batches, now=NOW, policy=Policy())


async def _catalogue(uow: Any, batches: list[PricesScrapedPayload]) -> None:
    await catalogue.fold_prices(uow, batches)


async def _grouping(uow: Any, batches: list[PricesScrapedPayload]) -> None:
    await grouping.fold_prices(uow, batches, now=NOW, policy=GROUPING_POLICY)


async def _placed(service: str, uow: Any) -> None:
    """Place the members under their anchor the way each service learns of it."""
    if service == "bargains":
        await bargains.change_group(uow, GROUP, now=NOW - timedelta(days=6), policy=Policy())
    elif service == "catalogue":
        await catalogue.change_group(uow, GROUP)
    else:
        for store in (ANCHOR, *MEMBERS):  # a store grouping has not seen cannot be placed
            await uow.repo.note_store_prices(batches=[_seed(store)], received_at=NOW - timedelta(days=6))
        await uow.repo.create_group(group_id="g1", chain="c", anchor=ANCHOR, members=MEMBERS)


def _seed(store: str) -> PricesScrapedPayload:
    at = NOW - timedelta(days=6)
    return PricesScrapedPayload(
        chain="c",
        store_id=store,
        source="scrape",
        observations=(PriceObservation(sku="seed", price_cents=100, observed_at=at),),
    )


READS_COUNTED = {"shelves_read", "runs_asked", "sweeps_of", "sweeps_moved"}
SERVICES: dict[str, tuple[Callable[[], Any], Fold]] = {
    "bargains": (InMemoryBargainsRepository, _bargains),
    "catalogue": (InMemoryCatalogueRepository, _catalogue),
    "grouping": (InMemoryGroupingRepository, _grouping),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_columns_fold_like_rows(service: str, seed: int) -> None:
    repository, fold = SERVICES[service]
    states = []
    for shape in ("rows", "columns"):
        uow = FakeUnitOfWork(repository())
        async with uow:
            await _placed(service, uow)
        for batch in _world(seed):
            async with uow:
                await fold(uow, batch if shape == "rows" else [_as_columns(b) for b in batch])
        unique = {"event_id", "occurred_at", "correlation_id"}
        published = [e.model_dump(exclude=unique) for e in uow.published]
        # What was read is counted apart (a member's page of columns is read a store at a time),
        # as are the sweeps that pages of columns keep.
        state = {name: held for name, held in vars(uow.repo).items() if name not in READS_COUNTED}
        states.append((copy.deepcopy(state), published))
    assert states[0] == states[1]
    # The world is not empty for this service: members answered, some prices of their own kept.
    assert states[0][0]


@dataclass(frozen=True)
class Judging:
    """A service's judging of a member's page: its anchor's row, a column at a time, price by price."""

    anchor_row: Callable[[Sighting, datetime], Any]
    """The anchor's stored row showing what a sighting shows, last seen at a moment."""
    by_columns: Callable[[PricesScrapedPayload, Mapping[str, Any], set[str]], list[int] | None]
    """The positions of a page its anchor may not answer, given its rows and the member's own skus."""
    by_price: Callable[[Sighting, Any], bool]
    """Whether an anchor's row answers one sighting, by the service's per-price rule."""


def _columns(page: PricesScrapedPayload) -> PriceColumns:
    assert page.prices is not None
    return page.prices


FRESH_SINCE = NOW - timedelta(hours=12)
"""Grouping's window here: tighter than the anchor's lag, so that both bounds are tried."""
JUDGING = {
    "grouping": Judging(
        anchor_row=lambda o, at: grouping_repository.Shelf(o.price_cents, o.was_price_cents, o.available, at),
        by_columns=lambda page, theirs, mine: grouping_repository.unanswered_prices(
            _columns(page),
            theirs=theirs,
            mine={sku: grouping_repository.Shelf(1, None, True, FRESH_SINCE) for sku in mine},
            fresh_since=FRESH_SINCE,
            anchor_lag=GROUPING_POLICY.anchor_lag,
        ),
        by_price=lambda o, row: bool(
            grouping_repository.answered_by_anchors(
                [grouping_repository.StagedRow("c", "m", *o[:4], o.observed_at)],
                anchor_of={("c", "m"): "a"},
                stored={("c", "a", o.sku): row},
                fresh_since=FRESH_SINCE,
                anchor_lag=GROUPING_POLICY.anchor_lag,
            )
        ),
    ),
    "catalogue": Judging(
        anchor_row=lambda o, at: (catalogue.price_row("c", "a", o).shelf, at),
        by_columns=lambda page, theirs, mine: catalogue.unanswered_prices(
            _columns(page), theirs=theirs, mine=mine
        ),
        by_price=lambda o, row: catalogue_answering.answers(
            anchor_shelf=row[0],
            anchor_seen=row[1],
            member_shelf=catalogue.price_row("c", "m", o).shelf,
            member_seen=o.observed_at,
        ),
    ),
    "bargains": Judging(
        anchor_row=lambda o, at: bargains_answering.Run(
            o.price_cents, o.was_price_cents, bargains.label_of(o), at
        ),
        by_columns=lambda page, theirs, mine: bargains.unanswered_prices(
            _columns(page), theirs=theirs, mine=mine
        ),
        by_price=lambda o, row: bargains_answering.answers(
            row,
            price_cents=o.price_cents,
            was_price_cents=o.was_price_cents,
            label=bargains.label_of(o),
            observed_at=o.observed_at,
        ),
    ),
}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("service", sorted(JUDGING))
def test_a_members_page_judged_by_columns_is_answered_as_price_by_price(service: str, seed: int) -> None:
    judging, rng, day = JUDGING[service], random.Random(seed), timedelta(hours=24)
    judged = whole = 0
    for _ in range(300):
        skus, seen = rng.sample(SKUS, rng.randint(1, 6)), rng.choice([NOW, NOW, NOW, NOW - day * 3 / 4])
        page = PricesScrapedPayload(
            chain="c",
            store_id="m",
            source="scrape",
            # Now and then a page older than grouping's window, its anchor's rows newer.
            prices=PriceColumns.of([_observation(rng, sku, seen) for sku in skus]),
        )
        # The anchor: mostly the page's shelves, at times another, a lagging or a missing one.
        theirs = {
            o.sku: judging.anchor_row(o if rng.random() < 0.9 else o._replace(price_cents=1), at)
            for o in page.sightings()
            if rng.random() < 0.95
            and (at := rng.choice([NOW, NOW, NOW, NOW - day / 4, NOW - day, NOW - 2 * day]))
        }
        mine = {rng.choice([SKUS[0], "elsewhere"])} if rng.random() < 0.3 else set()
        left = judging.by_columns(page, theirs, mine)
        if left is None:
            continue  # judged price by price
        judged += 1
        each = {o.sku for o in page.sightings() if o.sku in theirs and judging.by_price(o, theirs[o.sku])}
        assert set(skus).difference(skus[i] for i in left) == each - mine, (
            "what the anchor answers, but its own"
        )
        whole += not left
    assert judged > 40, "pages judged by columns"
    assert 10 < whole < judged, "some whole, some in part"


def test_a_page_is_judged_by_columns_only_when_its_member_and_anchor_are_not_judged_in_the_batch() -> None:
    def page(store: str, *, columns: bool = True) -> PricesScrapedPayload:
        observation = _observation(random.Random(1), "p0", NOW)
        batch = PricesScrapedPayload(chain="c", store_id=store, source="scrape", observations=(observation,))
        return _as_columns(batch) if columns else batch

    batches = [
        page("m1"),
        page("m2"),
        page("m2"),
        page("m3", columns=False),
        page("m4"),
        page("a2"),
        page("s3"),
    ]
    anchors = {"m1": "a1", "m2": "a1", "m3": "a1", "m4": "a2"}
    judged = judgeable(batches, lambda _, store: anchors.get(store))
    # m2 twice, m3 one by one, m4 beside its anchor's prices, a2 and s3 no member: only m1.
    assert {i: anchor for i, (anchor, _) in judged.items()} == {0: "a1"}
