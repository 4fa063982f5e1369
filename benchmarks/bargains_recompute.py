"""Benchmark: a full recompute of every bargain assessment next to an incremental one after a price change.

Builds many synthetic price histories of about a month (regular prices, true specials, illusory
specials raised the days before, past specials), assesses all of them, then changes the price of a
share of them, folds that observation in and assesses only those, on the same data in the same run.

    .venv/bin/python -m benchmarks.bargains_recompute --histories 300000 --changed-share 0.01
"""

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from bargains.domain.bargains import assess
from bargains.domain.history import Segment, fold
from testsupport import report

START = datetime(2026, 11, 2, 12, tzinfo=UTC)
SPECIAL_SHARE = 0.10
ILLUSORY_SHARE = 0.3
PAST_SPECIAL_SHARE = 0.10

History = tuple[Segment, ...]


def day(number: int) -> datetime:
    """Return the time of a day of the synthetic month."""
    return START + timedelta(days=number)


def synthetic_history(rng: random.Random, days: int) -> History:
    """Return a month of history: a regular price, maybe a past special, maybe a current true or fake one."""
    regular = rng.randint(80, 4000)
    special_from = days - 7
    segments = [Segment(regular, None, day(0), day(special_from - 6))]
    if rng.random() < PAST_SPECIAL_SHARE:
        segments.append(Segment(round(regular * 0.8), regular, day(special_from - 5), day(special_from - 2)))
    roll = rng.random()
    if roll < SPECIAL_SHARE * ILLUSORY_SHARE:
        raised = round(regular * 1.25)
        segments.append(Segment(raised, None, day(special_from - 1), day(special_from - 1)))
        segments.append(Segment(regular, raised, day(special_from), day(days)))
    elif roll < SPECIAL_SHARE:
        segments.append(Segment(regular, None, day(special_from - 1), day(special_from - 1)))
        segments.append(
            Segment(round(regular * rng.uniform(0.6, 0.85)), regular, day(special_from), day(days))
        )
    else:
        segments.append(Segment(regular, None, day(special_from - 1), day(days)))
    return tuple(segments)


def main() -> None:
    """Build the histories, time a full and an incremental recompute, and print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--histories", type=int, default=300_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--changed-share", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=Path("bench-results/bargains_recompute.json"))
    args = parser.parse_args()

    rng = random.Random(args.seed)
    histories = [synthetic_history(rng, args.days) for _ in range(args.histories)]
    now = START + timedelta(days=args.days)

    started = time.perf_counter()
    assessments = [assess(history, now=now) for history in histories]
    full_s = time.perf_counter() - started

    changed = rng.sample(range(len(histories)), round(len(histories) * args.changed_share))
    later = now + timedelta(hours=6)
    started = time.perf_counter()
    for index in changed:
        history = histories[index]
        histories[index] = fold(
            history,
            price_cents=round(history[-1].price_cents * 0.85),
            was_price_cents=None,
            observed_at=later,
        )
        assessments[index] = assess(histories[index], now=later)
    incremental_s = time.perf_counter() - started

    report(
        Console(),
        "bargains: full vs incremental recompute",
        {
            "histories": len(histories),
            "segments": sum(len(history) for history in histories),
            "changed histories": len(changed),
            "bargains": sum(len(assessment.bargains) for assessment in assessments),
            "illusory flags": sum(len(assessment.flags) for assessment in assessments),
            "full recompute s": round(full_s, 3),
            "incremental recompute s": round(incremental_s, 4),
            "full / incremental": round(full_s / incremental_s, 1),
            "assessments per s (full)": round(len(histories) / full_s),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
