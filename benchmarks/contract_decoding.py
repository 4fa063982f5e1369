"""Benchmark: CPU time to decode one PricesScraped of 500 prices with the contracts codec.

Decodes the same record (as `pricestream bench` sends it: type and version headers, prices
as JSON), its prices one object each (`rows`) and as columns (`columns`), in a loop under
`time.process_time`, best of several rounds, and prints the CPU time per event and the
prices per second one core decodes, with and without turning them into sightings as the
services do. It measures what every service's consumer runs on each record, nothing of
the broker or the database.

    .venv/bin/python -m benchmarks.contract_decoding --prices 500 --loops 200 --rounds 5
"""

import argparse
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from contracts import CODEC
from contracts.events import PricesScraped

HEADERS = {"event_type": b"PricesScraped", "schema_version": b"1"}


def record(prices: int, shape: str = "rows") -> bytes:
    """Write one PricesScraped of `prices` observations as its JSON bytes, one object each or as columns."""
    at = (datetime.now(UTC) - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    if shape == "columns":
        # What the bench and the scraper send: the same prices, a column each and one time.
        doc = json.loads(record(prices))
        rows = doc["payload"].pop("observations")
        doc["payload"]["prices"] = {
            "sku": [o["sku"] for o in rows],
            "price_cents": [o["price_cents"] for o in rows],
            "observed_at": at,
        }
        return json.dumps(doc).encode()
    event_id = str(uuid.uuid4())
    return json.dumps(
        {
            "event_id": event_id,
            "event_type": "PricesScraped",
            "schema_version": 1,
            "occurred_at": at,
            "producer": "bench",
            "correlation_id": event_id,
            "payload": {
                "chain": "bench",
                "store_id": "s00001",
                "source": "import",
                "observations": [
                    {"sku": f"p{i}", "price_cents": 100 + i % 2000, "observed_at": at} for i in range(prices)
                ],
            },
        }
    ).encode()


def cpu_per_decode(value: bytes, *, loops: int, rounds: int, sightings: bool = False) -> list[float]:
    """Return each round's CPU seconds per decode (and per turning its prices into sightings)."""
    figures = []
    for _ in range(rounds):
        started = time.process_time()
        for _ in range(loops):
            event = CODEC.decode(value, HEADERS)
            if sightings and isinstance(event, PricesScraped):
                event.payload.sightings()
        figures.append((time.process_time() - started) / loops)
    return figures


def main() -> None:
    """Measure and print the CPU time per decoded event."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prices", type=int, default=500)
    parser.add_argument("--loops", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    for shape in ("rows", "columns"):
        value = record(args.prices, shape)
        CODEC.decode(value, HEADERS)  # warm up: schema caches, imports
        for sightings in (False, True):
            figures = cpu_per_decode(value, loops=args.loops, rounds=args.rounds, sightings=sightings)
            best = min(figures)
            print(
                json.dumps(
                    {
                        "shape": shape,
                        "with_sightings": sightings,
                        "bytes_per_event": len(value),
                        "prices_per_event": args.prices,
                        "cpu_ms_per_event_best": round(best * 1000, 3),
                        "cpu_ms_per_event_rounds": [round(f * 1000, 3) for f in figures],
                        "prices_per_cpu_second": round(args.prices / best),
                    }
                )
            )


if __name__ == "__main__":
    main()
