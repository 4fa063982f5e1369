"""Sweeps: which rows a batch's pages seen whole hold, which need no write, and when sweeps stand."""

from datetime import UTC, datetime, timedelta

import pytest

from contracts.events import PriceObservation
from contracts.events.v1 import PriceColumns, PricesScrapedPayload
from servicekit.sweeps import SeenPage, page_of, plan, seen_pages, shelves_of

pytestmark = pytest.mark.unit

T = datetime(2026, 3, 2, 12, tzinfo=UTC)
SKUS = ("p0", "p1", "p2")
PAGE = page_of(SKUS)
KEYS = [("s1", sku) for sku in SKUS]


def _seen(at: datetime = T, skus: tuple[str, ...] = SKUS) -> SeenPage:
    return SeenPage("s1", page_of(skus), skus, at)


def test_a_page_seen_again_unchanged_under_its_own_sweep_writes_no_row() -> None:
    sweeping = plan([_seen()], moved=dict.fromkeys(KEYS, T), renewed={}, held=dict.fromkeys(KEYS, PAGE))
    assert sweeping.skipped == set(KEYS)
    assert sweeping.held == {}
    assert sweeping.sweeps == {("s1", PAGE): T}


@pytest.mark.parametrize(
    "held",
    [
        {},  # first sighting under a sweep
        dict.fromkeys(KEYS[:2], PAGE),  # one row let go since
        dict.fromkeys(KEYS, page_of(("p0", "p1", "p2", "p3"))),  # held by another page
    ],
)
def test_a_page_whose_rows_its_sweep_does_not_all_hold_writes_them_held(
    held: dict[tuple[str, str], int],
) -> None:
    sweeping = plan([_seen()], moved=dict.fromkeys(KEYS, T), renewed={}, held=held)
    assert sweeping.skipped == set()
    assert sweeping.held == dict.fromkeys(KEYS, PAGE)
    assert sweeping.sweeps == {("s1", PAGE): T}


def test_a_new_price_on_the_page_is_written_held_with_the_rest() -> None:
    sweeping = plan(
        [_seen()],
        moved=dict.fromkeys(KEYS[1:], T),
        renewed={KEYS[0]: T},
        held=dict.fromkeys(KEYS, PAGE),
    )
    assert sweeping.skipped == set()
    assert sweeping.held == dict.fromkeys(KEYS, PAGE)


@pytest.mark.parametrize(
    ("moved", "renewed"),
    [
        (dict.fromkeys(KEYS[1:], T), {}),  # a product not moved: older than what is held, or answered
        ({**dict.fromkeys(KEYS[1:], T), KEYS[0]: T + timedelta(hours=1)}, {}),  # moved later (seen twice)
        (dict.fromkeys(KEYS[1:], T), {KEYS[0]: T - timedelta(hours=1)}),  # a run of an older moment
    ],
)
def test_a_page_not_every_product_of_which_was_seen_at_its_moment_holds_nothing(
    moved: dict[tuple[str, str], datetime], renewed: dict[tuple[str, str], datetime]
) -> None:
    sweeping = plan([_seen()], moved=moved, renewed=renewed, held=dict.fromkeys(KEYS, PAGE))
    assert (sweeping.skipped, sweeping.held, sweeping.sweeps) == (set(), {}, {})


def test_pages_are_told_apart_by_their_products_in_order() -> None:
    assert page_of(SKUS) == page_of(list(SKUS))
    assert page_of(SKUS) != page_of(("p0", "p2", "p1"))
    assert page_of(SKUS) != page_of(("p0", "p1"))
    assert page_of(("a", "bc")) != page_of(("ab", "c"))
    assert -(2**63) <= page_of(SKUS) < 2**63  # a bigint


def test_only_pages_of_columns_seen_at_once_with_each_product_once_are_seen_whole() -> None:
    def batch(times: list[datetime], skus: tuple[str, ...] = SKUS) -> PricesScrapedPayload:
        observations = [
            PriceObservation(sku=s, price_cents=100, observed_at=t) for s, t in zip(skus, times, strict=True)
        ]
        return PricesScrapedPayload(
            chain="c", store_id="s1", source="scrape", prices=PriceColumns.of(observations)
        )

    rows = PricesScrapedPayload(
        chain="c",
        store_id="s1",
        source="scrape",
        observations=(PriceObservation(sku="p0", price_cents=100, observed_at=T),),
    )
    pages = seen_pages(
        [
            batch([T] * 3),
            batch([T, T, T - timedelta(hours=1)]),
            batch([T] * 3, ("p0", "p1", "p0")),
            rows,
        ]
    )
    shelves = shelves_of(batch([T] * 3).prices)  # type: ignore[arg-type]
    assert pages == [SeenPage("s1", PAGE, SKUS, T, shelves), None, None, None]


def test_what_a_page_shows_is_equal_only_for_every_column_but_skus_and_moments_equal() -> None:
    def shown(at: datetime = T, **fields: object) -> int:
        observations = [
            PriceObservation.model_validate({"sku": s, "price_cents": 100, "observed_at": at} | fields)
            for s in SKUS
        ]
        return shelves_of(PriceColumns.of(observations))

    assert shown() == shown(T + timedelta(days=1))  # seen again later: the same shelves
    others = [
        shown(price_cents=101),
        shown(was_price_cents=150),
        shown(available=False),
        shown(member_price_cents=90),
        shown(multibuy={"quantity": 2, "total_cents": 150}),
        shown(sold_by="kg"),
        shown(unit_price={"cents": 100, "quantity": 1, "unit": "kg", "text": "$1.00 per kg"}),
    ]
    assert len({shown(), *others}) == len(others) + 1
    assert -(2**63) <= shown() < 2**63  # a bigint
