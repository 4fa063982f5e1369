"""The real Coles and Woolworths adapters against the simulated world: its truth, and its misbehaviour.

The local stack serves the world's first chain as a Coles-like site and the second as a
Woolworths-like one. A full scrape through the adapters publishes exactly the truth, shelf
labels included. Each way a real site misbehaves ends in a clear error naming the defence,
the host paused, a metric and a log line that say which, and no partial page published.
"""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pricestream.stack import Stack
from tests.integration.test_scraper import _scraper, _start_run, _wait_finished, published_observations

pytestmark = pytest.mark.integration

Truth = dict[tuple[str, str, str], dict[str, Any]]


def _chain_of(stack: Stack, dialect: str) -> str:
    """Return the chain the storefront serves in a dialect (from its truth: never throttled)."""
    chains = httpx.get(f"{stack.config.storefront_url}/_truth/dialects", timeout=10).json()["chains"]
    return str(next(chain for chain, spoken in chains.items() if spoken == dialect))


def _truth(stack: Stack, chain: str, day: int) -> Truth:
    """Return what every store of a chain shows on a day, shelf labels included."""
    shop = stack.config.storefront_url
    rows = httpx.get(f"{shop}/_truth/prices", params={"chain": chain, "day": day}, timeout=30).json()[
        "prices"
    ]
    return {(chain, row["store_id"], row["sku"]): row for row in rows}


def _as_truth(observation: Any) -> dict[str, Any]:
    """Return the fields of a published observation the truth states, in its terms."""
    multibuy = observation.multibuy
    return {
        "price_cents": observation.price_cents,
        "was_price_cents": observation.was_price_cents,
        "available": observation.available,
        "sold_by": observation.sold_by,
        "member_price_cents": observation.member_price_cents,
        "multibuy": None
        if multibuy is None
        else {"quantity": multibuy.quantity, "total_cents": multibuy.total_cents},
    }


def _agrees(truth: dict[str, Any]) -> dict[str, Any]:
    """Return the truth's fields a published observation must equal."""
    fields = ("price_cents", "was_price_cents", "available", "sold_by", "member_price_cents", "multibuy")
    return {field: truth[field] for field in fields}


@pytest.fixture
def calm_shop(stack: Stack) -> Iterator[None]:
    """Make the storefront behave again after a test that makes it misbehave."""
    yield
    httpx.post(f"{stack.config.storefront_url}/_control", json={"misbehaviour": "none"}, timeout=10)


@pytest.mark.parametrize("dialect", ["coles", "woolworths"])
async def test_a_full_scrape_through_a_chains_adapter_publishes_its_truth_labels_included(
    stack: Stack, dialect: str
) -> None:
    chain = _chain_of(stack, dialect)
    run_id = _start_run(stack, scope="all", day=9, chains=[chain])
    summary = _wait_finished(stack, run_id, timeout=300)
    assert summary["status"] == "finished", summary
    truth = _truth(stack, chain, day=9)
    assert summary["observations"] == len(truth)

    published = await published_observations(stack, run_id, len(truth))

    assert {key: _as_truth(o) for key, o in published.items()} == {k: _agrees(v) for k, v in truth.items()}
    labelled = [o for o in published.values() if o.unit_price is not None]
    assert len(labelled) > 0.9 * len(published), "the shop's own unit price is kept"
    assert any(o.multibuy for o in published.values())
    assert any(o.member_price_cents for o in published.values())
    assert any(o.sold_by == "kg" for o in published.values())


def _defences(stack: Stack, chain: str, defence: str) -> float:
    """Return the scraper's count of a defence tripped by a chain."""
    metrics = httpx.get(f"{_scraper(stack)}/metrics", timeout=10).text
    prefix = f'scraper_site_defences_total{{chain="{chain}",defence="{defence}"}}'
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines() if line.startswith(prefix))


def _logged(stack: Stack, chain: str, defence: str) -> list[dict[str, Any]]:
    """Return the scraper's log lines that say a chain's site tripped a defence."""
    lines = []
    for line in stack.services["scraper"].log_file.read_text().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("defence") == defence and entry.get("chain") == chain:
            lines.append(entry)
    return lines


@pytest.mark.parametrize(
    ("misbehaviour", "dialect", "defence", "answers"),
    [
        # One bad answer is enough; each defence pauses the host, which is what makes a test slow.
        ("challenge", "coles", "challenge", 1),
        # A 404 whose build the home page still names, read again at once: no second answer needed.
        ("stale-build", "coles", "build_id", 1),
        ("empty-pages", "coles", "empty_page", 1),
        ("storm-403", "woolworths", "forbidden", 1),
        # A request tries 8 times before it gives up: 80 answers of 429 make the first ones give up.
        ("storm-429", "woolworths", "rate_limited", 80),
        ("renamed-field", "woolworths", "schema_drift", 1),
    ],
)
async def test_a_misbehaving_site_trips_a_named_defence_and_publishes_no_partial_page(
    stack: Stack, calm_shop: None, misbehaviour: str, dialect: str, defence: str, answers: int
) -> None:
    chain = _chain_of(stack, dialect)
    before = _defences(stack, chain, defence)
    run_id = _start_run(stack, scope="all", day=10, chains=[chain])
    control = {"misbehaviour": misbehaviour, "misbehaving_chains": [chain], "misbehaving_answers": answers}
    httpx.post(f"{stack.config.storefront_url}/_control", json=control, timeout=10).raise_for_status()

    summary = _wait_finished(stack, run_id, timeout=300)

    assert summary["status"] == "failed", summary
    assert f"{defence}:" in summary["error"], summary["error"]
    assert 0 < summary["pages_done"] < summary["pages_total"]
    assert _defences(stack, chain, defence) > before, "a metric says which defence tripped"
    logged = _logged(stack, chain, defence)
    assert logged, "a log line says which defence tripped"
    assert all("paused" in entry["event"] for entry in logged), "the host is paused"
    truth = _truth(stack, chain, day=10)
    published = await published_observations(stack, run_id, summary["observations"])
    assert len(published) == summary["observations"] < len(truth)
    # Whatever was published is whole pages of right prices: nothing of a refused page.
    assert all(_as_truth(o) == _agrees(truth[key]) for key, o in published.items())
