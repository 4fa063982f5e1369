"""Benchmark: the catalogue's read side over the four AU catalogues of au-grocery-2023 (~16,000 products).

Brings a stack up, leaves only the catalogue consuming, and feeds it every product and, per
chain, a few anchor stores' prices with member stores grouped under them. Then it measures:
the catalogue's consume rate (products and prices, timed until its metrics count them all),
search latency through the API (queries made from real names, half of them misspelt),
product page latency, and the export's rate through the paged API (a member answered through
its anchor counts as a price). Requests are made one at a time with a token, as a client would.

    .venv/bin/python -m benchmarks.catalogue_read --anchors 3 --members 5
"""

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from contracts import Event, topic_for
from contracts.events import PriceObservation, PricesScraped, ProductObserved, StoreGroupChanged
from contracts.events.v1 import PricesScrapedPayload, ProductObservedPayload, StoreGroupChangedPayload
from pricestream.stack import Stack
from pricestream.tokens_cli import make_token
from scraper.domain.importers import read_rows
from servicekit.metrics import processed_counts
from testsupport import publish_events, report, running_stack

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "au-grocery-2023"
CHAINS = ("aldi", "coles", "iga", "woolworths")
BATCH = 1000


def read_catalogue(chain: str) -> list[dict[str, Any]]:
    """Return a chain's products with a sku, a name and a price, once each."""
    path = DATA / f"{chain}.json"
    found: dict[str, dict[str, Any]] = {}
    for row in read_rows(path.name, path.read_bytes()):
        if row.get("sku") and isinstance(row.get("name"), str) and isinstance(row.get("price"), int | float):
            found.setdefault(str(row["sku"]), row)
    return list(found.values())


def events_of(
    catalogues: dict[str, list[dict[str, Any]]], *, anchors: int, members: int, at: datetime
) -> tuple[list[Event], list[Event]]:
    """Return the products' events, and the prices and groups of every chain's stores."""
    products: list[Event] = []
    prices: list[Event] = []
    for chain, rows in catalogues.items():
        for row in rows:
            payload = ProductObservedPayload(
                chain=chain,
                sku=str(row["sku"]),
                change="new",
                name=row["name"][:300],
                brand=row.get("brand"),
                size=row.get("size"),
                observed_at=at,
            )
            products.append(ProductObserved.new(producer="scraper", payload=payload))
        for a in range(anchors):
            store = f"{chain}-a{a}"
            observations = [
                PriceObservation(
                    sku=str(row["sku"]), price_cents=max(1, round(row["price"] * 100)) + a, observed_at=at
                )
                for row in rows
            ]
            for start in range(0, len(observations), BATCH):
                batch = PricesScrapedPayload(
                    chain=chain,
                    store_id=store,
                    source="import",
                    observations=tuple(observations[start : start + BATCH]),
                )
                prices.append(PricesScraped.new(producer="scraper", payload=batch))
            group = StoreGroupChangedPayload(
                chain=chain,
                group_id=f"g{a}",
                group_version=1,
                anchor_store_id=store,
                member_store_ids=tuple(f"{chain}-a{a}-m{m}" for m in range(members)),
                reason="formed",
            )
            prices.append(StoreGroupChanged.new(producer="grouping", payload=group))
    return products, prices


def consume(stack: Stack, events: list[Event], topic: str, console: Console) -> float:
    """Publish events and return the seconds until the catalogue has processed every one."""
    url = stack.service_url("catalogue")
    before = processed_counts(url)[topic]
    started = time.perf_counter()
    asyncio.run(publish_events(stack.config.bootstrap_servers, events))
    wanted = before + sum(1 for e in events if topic_for(type(e)).name == topic)
    with console.status(f"catalogue consumes {topic}..."):
        while processed_counts(url)[topic] < wanted:
            if time.perf_counter() - started > 900:
                raise RuntimeError(
                    f"the catalogue processed {processed_counts(url)[topic]} of {wanted} on {topic}"
                )
            time.sleep(0.2)
    return time.perf_counter() - started


def misspell(rng: random.Random, word: str) -> str:
    """Drop, double or swap one letter of a word longer than four letters."""
    if len(word) <= 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    return rng.choice(
        [
            word[:i] + word[i + 1 :],
            word[:i] + word[i] + word[i:],
            word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :],
        ]
    )


def queries(rng: random.Random, catalogues: dict[str, list[dict[str, Any]]], count: int) -> list[str]:
    """Return search queries: two words of a real product's name, every other one misspelt."""
    names = [row["name"] for rows in catalogues.values() for row in rows]
    made = []
    for n in range(count):
        words = [w for w in rng.choice(names).lower().split() if w.isalpha()][:2] or ["milk"]
        made.append(" ".join(misspell(rng, w) if n % 2 else w for w in words))
    return made


def timed(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> float:
    """Return the milliseconds one GET took, failing on an error."""
    started = time.perf_counter()
    response = client.get(path, params=params)
    response.raise_for_status()
    return (time.perf_counter() - started) * 1000


def percentiles(samples: list[float]) -> dict[str, float]:
    """Return p50 and p95 in milliseconds."""
    cuts = statistics.quantiles(samples, n=100)
    return {"p50_ms": round(statistics.median(samples), 1), "p95_ms": round(cuts[94], 1)}


def main() -> None:
    """Feed the catalogue the AU catalogues, then time its searches, product pages and export."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--anchors", type=int, default=3, help="Anchor stores priced per chain")
    parser.add_argument("--members", type=int, default=5, help="Member stores answered by each anchor")
    parser.add_argument("--requests", type=int, default=400, help="Searches and product pages timed, each")
    parser.add_argument("--page", type=int, default=10_000, help="Export page size")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "catalogue_read.json")
    args = parser.parse_args()
    console = Console()
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing: this benchmark reads the au-grocery-2023 catalogues")
    catalogues = {chain: read_catalogue(chain) for chain in CHAINS}
    at = datetime.now(UTC) - timedelta(hours=1)
    products, prices = events_of(catalogues, anchors=args.anchors, members=args.members, at=at)
    observations = sum(e.payload.count() for e in prices if isinstance(e, PricesScraped))
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as home, running_stack(Path(home) / ".pricestream", "bench") as stack:
        # Only the catalogue consumes: the other services' work would share the same cores.
        for name in ("scraper", "grouping", "substitutions", "bargains"):
            stack.services[name].stop(timeout=30)
        products_s = consume(stack, products, "products.observed.v1", console)
        prices_s = consume(stack, prices, "prices.scraped.v1", console)
        token = make_token(stack, "benchmark")
        with httpx.Client(
            base_url=stack.service_url("catalogue"), headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as client:
            searched = [
                timed(client, "/v1/search", {"q": q}) for q in queries(rng, catalogues, args.requests)
            ]
            picks = [
                (chain, str(rng.choice(rows)["sku"]))
                for chain, rows in catalogues.items()
                for _ in range(args.requests // 4)
            ]
            pages = [timed(client, f"/v1/products/{c}/{s}") for c, s in picks]
            exported, page_count, cursor = 0, 0, None
            started = time.perf_counter()
            while True:
                params: dict[str, Any] = {"limit": args.page, **({"cursor": cursor} if cursor else {})}
                body = client.get("/v1/export/prices", params=params).raise_for_status().json()
                exported += len(body["prices"])
                page_count += 1
                cursor = body["next_cursor"]
                if cursor is None:
                    break
            export_s = time.perf_counter() - started
    figures = {
        "products": len(products),
        "observations": observations,
        "consume_products_per_s": round(len(products) / products_s),
        "consume_observations_per_s": round(observations / prices_s),
        "search": percentiles(searched),
        "product_page": percentiles(pages),
        "export_prices": exported,
        "export_pages": page_count,
        "export_prices_per_s": round(exported / export_s),
    }
    report(console, "catalogue read side (au-grocery-2023)", figures, args.out)


if __name__ == "__main__":
    main()
