"""Ingesting rows in memory: bad rows quarantined, duplicates skipped, one time for a whole file."""

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from contracts.events import PricesScraped, ProductObserved
from scraper.domain.importers import RawRow
from scraper.service_layer.ingestion import Ingestor, IngestResult, RowProblem
from scraper.telemetry import ScraperCounters
from tests.fakes.scraper import InMemoryScraperRepository
from tests.fakes.unit_of_work import FakeUnitOfWork

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
Uow = FakeUnitOfWork[InMemoryScraperRepository]


def _ingestor() -> tuple[Ingestor, Uow, CollectorRegistry]:
    uow = FakeUnitOfWork(InMemoryScraperRepository())
    registry = CollectorRegistry()
    return Ingestor(uow=uow, counters=ScraperCounters.register(registry)), uow, registry


async def _ingest(
    ingestor: Ingestor,
    rows: list[RawRow],
    *,
    observed_at: datetime | None = None,
    chain: str | None = "testchain",
    store: str | None = "q1",
) -> IngestResult:
    return await ingestor.ingest(
        rows, default_chain=chain, default_store=store, source="import", observed_at=observed_at, now=NOW
    )


async def test_bad_rows_are_quarantined_with_their_reason_and_a_repeat_is_a_duplicate() -> None:
    rows: list[RawRow] = [
        {"sku": "q-1", "price_cents": 250, "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-2", "price_cents": -5, "observed_at": "2026-11-01T10:00:00Z"},
        {"price_cents": 100, "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-3", "price": 1.5, "unit": "parsecs", "observed_at": "2026-11-01T10:00:00Z"},
        {"sku": "q-4", "price": 2.5, "observed_at": "2026-11-01T10:00:00"},
    ]
    ingestor, uow, metrics = _ingestor()

    first = await _ingest(ingestor, rows)
    reasons = (
        RowProblem(1, "negative price"),
        RowProblem(2, "missing sku"),
        RowProblem(3, "unknown unit 'parsecs'"),
        RowProblem(4, "timestamp has no timezone"),
    )
    assert first == IngestResult(accepted=1, quarantined=4, duplicates=0, events=1, problems=reasons)
    assert [(q.source, q.reason) for q in uow.repo.quarantined] == [
        ("import", "negative price"),
        ("import", "missing sku"),
        ("import", "unknown unit 'parsecs'"),
        ("import", "timestamp has no timezone"),
    ]
    assert uow.repo.quarantined[1].raw == rows[2], "the row is kept as it came"

    again = await _ingest(ingestor, rows)
    assert again == IngestResult(accepted=0, quarantined=4, duplicates=1, events=0, problems=reasons)
    assert len(uow.published) == 1, "nothing goes out the second time"
    assert metrics.get_sample_value("scraper_observations_total") == 1
    assert metrics.get_sample_value("scraper_quarantined_total", {"source": "import"}) == 8


async def test_a_row_repeated_in_a_batch_counts_once_even_at_another_price() -> None:
    at = "2026-11-01T10:00:00Z"
    rows: list[RawRow] = [
        {"sku": "a", "price_cents": 100, "observed_at": at},
        {"sku": "a", "price_cents": 120, "observed_at": at},
        {"sku": "a", "price_cents": 130, "observed_at": "2026-11-02T10:00:00Z"},
    ]
    ingestor, uow, _ = _ingestor()
    result = await _ingest(ingestor, rows)
    assert result == IngestResult(accepted=2, quarantined=0, duplicates=1, events=1)
    [event] = uow.published_of(PricesScraped)
    assert [o.price_cents for o in event.payload.sightings()] == [100, 130], "the first of a repeat wins"


async def test_one_file_time_makes_its_batches_duplicates_of_each_other() -> None:
    rows: list[RawRow] = [{"sku": f"p{i}", "price": 1.0 + i} for i in range(4)]
    file_time = NOW - timedelta(hours=1)
    ingestor, uow, _ = _ingestor()

    first = await _ingest(ingestor, rows[:3], observed_at=file_time)
    second = await _ingest(ingestor, rows[1:], observed_at=file_time)
    assert (first.accepted, second.accepted, second.duplicates) == (3, 1, 2)
    observed = {o.observed_at for e in uow.published_of(PricesScraped) for o in e.payload.sightings()}
    assert observed == {file_time}

    untimed = await _ingest(ingestor, rows[:1])
    assert untimed.accepted == 1, "without a file time the row is observed now: a new observation"
    assert uow.published_of(PricesScraped)[-1].payload.sightings()[0].observed_at == NOW


async def test_a_file_time_in_the_future_is_refused() -> None:
    ingestor, uow, _ = _ingestor()
    with pytest.raises(ValueError, match="observed_at is in the future"):
        await _ingest(ingestor, [{"sku": "a", "price": 1.0}], observed_at=NOW + timedelta(minutes=6))
    assert uow.commits == 0
    ok = await _ingest(ingestor, [{"sku": "a", "price": 1.0}], observed_at=NOW + timedelta(minutes=4))
    assert ok.accepted == 1, "clocks disagree a little: five minutes ahead are tolerated"


async def test_rows_of_several_stores_go_out_store_by_store_with_their_products() -> None:
    rows: list[RawRow] = [
        {"store_id": "b", "sku": "milk", "name": "Milk", "size": "2L", "price": 3.1},
        {"store_id": "a", "sku": "milk", "name": "Milk", "size": "2L", "price": 3.0},
        {"store_id": "a", "sku": "bread", "price": 4.0},
        {"chain": "other", "store_id": "a", "sku": "milk", "name": "Milk 2L", "price": 3.2},
    ]
    ingestor, uow, _ = _ingestor()
    result = await _ingest(ingestor, rows, store=None)

    assert result == IngestResult(accepted=4, quarantined=0, duplicates=0, events=5)
    prices = [
        (e.payload.chain, e.payload.store_id, e.payload.count()) for e in uow.published_of(PricesScraped)
    ]
    assert prices == [("other", "a", 1), ("testchain", "a", 2), ("testchain", "b", 1)]
    assert all(e.payload.source == "import" for e in uow.published_of(PricesScraped))
    products = [(e.payload.chain, e.payload.sku, e.payload.change) for e in uow.published_of(ProductObserved)]
    assert products == [("other", "milk", "new"), ("testchain", "milk", "new")], (
        "a product is described once per chain; a row without a name describes none"
    )
    assert {e.payload.observed_at for e in uow.published_of(ProductObserved)} == {NOW}


async def test_a_row_without_store_or_chain_is_quarantined() -> None:
    ingestor, uow, _ = _ingestor()
    result = await _ingest(ingestor, [{"sku": "a", "price": 1.0}], chain=None, store=None)
    problems = (RowProblem(0, "missing chain"),)
    assert result == IngestResult(accepted=0, quarantined=1, duplicates=0, events=0, problems=problems)
    assert [q.reason for q in uow.repo.quarantined] == ["missing chain"]
