"""Live mode: one store of a real chain read through its adapter, and a clear, fast failure offline."""

import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from scraper.chains.coles import ColesAdapter
from scraper.chains.live import NoNetworkError, check_reachable, live_adapter, scrape_store
from scraper.domain.importers import read_jsonl
from scraper.domain.ingest import Accepted, validate_row
from tests.fakes.chain_sites import ColesSite, fetcher

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


async def test_a_live_scrape_reads_pages_of_one_store_up_to_the_limit() -> None:
    site = ColesSite()
    adapter = ColesAdapter(fetcher(site), "https://coles.test")
    summary = await scrape_store(adapter, "coles", "0584", max_pages=3, now=NOW)

    assert summary.pages == 3, "dairy pages 1 and 2, then fruit page 1; the empty category has none"
    assert len(summary.observations) == 5 + 2 + 2
    assert summary.quarantined["unknown tile type 'RECIPE_TILE'"] == 1
    assert {r.headers.get("cookie") for r in site.data_requests()} == {"fulfillmentStoreId=0584"}
    butter = next(o for o in summary.observations if o["sku"] == "7893303")
    assert butter["member_price_cents"] == 450
    assert butter["store_id"] == "0584"


async def test_its_observations_read_back_as_the_same_prices() -> None:
    adapter = ColesAdapter(fetcher(ColesSite()), "https://coles.test")
    summary = await scrape_store(adapter, "coles", "7724", max_pages=1, now=NOW)
    lines = "".join(json.dumps(row) + "\n" for row in summary.observations).encode()
    again = [validate_row(row, default_chain=None, default_store=None, now=NOW) for row in read_jsonl(lines)]
    assert all(isinstance(v, Accepted) for v in again)
    by_sku = {v.observation.sku: v.observation for v in again if isinstance(v, Accepted)}
    assert by_sku["5561722"].multibuy is not None
    assert by_sku["5561722"].multibuy.total_cents == 1200
    assert by_sku["8150288"].unit_price is not None
    assert by_sku["8150288"].unit_price.text == "$1.55 per 1L"


async def test_an_unreachable_site_fails_at_once_with_a_clear_message() -> None:
    def offline(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno -2] Name or service not known")

    with pytest.raises(NoNetworkError, match=r"cannot reach https://coles\.test/ .*needs network access"):
        await check_reachable(fetcher(offline), "https://coles.test/")


def test_only_the_real_dialects_have_a_live_mode() -> None:
    with pytest.raises(ValueError, match="coles or woolworths, not 'aldi'"):
        live_adapter("aldi", fetcher(ColesSite()))


def test_the_cli_fails_fast_and_non_zero_when_the_site_cannot_be_reached(tmp_path: Path) -> None:
    started = time.monotonic()
    command = [str(Path(sys.executable).parent / "pricestream")]
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    args = ["scrape", "--live", "--chain", "coles", "--store", "7724", "--site", "http://127.0.0.1:9"]
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode != 0
    assert "cannot reach http://127.0.0.1:9" in " ".join((done.stdout + done.stderr).split())
    assert time.monotonic() - started < 30
