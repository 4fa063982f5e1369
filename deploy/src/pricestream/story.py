"""The demo story: the simulated world through several days, then what pricestream made of it.

Each simulated day is one scrape run of the plan (every store the first day, then the
anchors daily and a sample of members), stamped with that day's time so that history,
freshness and bargains behave as over real days. Once every consumer has caught up, the
report compares each service's answers with the storefront's ground truth.
"""

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts import SERVICES, TOPICS
from grouping.domain.evaluation import adjusted_rand_index
from pricestream.kafka import describe_topics
from pricestream.processes import StackError
from pricestream.stack import Stack


@dataclass(frozen=True, slots=True)
class Story:
    """How many days to run, and how long to wait for the services to catch up."""

    days: int = 16
    settle_timeout_s: float = 240.0


def day_times(days: int, *, now: datetime | None = None) -> list[datetime]:
    """Return the moment each simulated day stands for: the last day an hour ago, one day apart."""
    last = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return [last - timedelta(days=days - 1 - day) for day in range(days)]


def run_story(stack: Stack, console: Console, story: Story) -> dict[str, Any]:
    """Scrape day by day, wait until everything is processed, and return the figures against the truth."""
    shop = stack.config.storefront_url
    scraper = stack.service_process("scraper").url
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    runs = []
    with Progress(*columns, TextColumn("{task.fields[note]}"), console=console) as progress:
        bar = progress.add_task("simulated days", total=story.days, note="")
        for day, moment in enumerate(day_times(story.days)):
            httpx.post(f"{shop}/v1/clock", json={"day": day}, timeout=10).raise_for_status()
            body = {"scope": "plan", "day": day, "as_of": moment.isoformat()}
            response = httpx.post(f"{scraper}/v1/runs", json=body, timeout=60)
            if response.status_code != 202:
                raise StackError(f"the scraper refused day {day}: {response.status_code} {response.text}")
            run = _finished(scraper, response.json()["run_id"])
            runs.append(run)
            note = f"day {day}: {run['stores']} stores, {run['observations']:,} prices"
            progress.update(bar, advance=1, note=note)
            if day == 0:
                # A day passes between scrapes: grouping places the new stores and the scraper
                # learns who is an anchor, so later days scrape anchors and samples only.
                progress.update(bar, note="day 0: grouping places the stores...")
                _settle(
                    stack,
                    story.settle_timeout_s,
                    lambda text: progress.update(bar, note=text),
                    only={("grouping", "prices.scraped.v1"), ("scraper", "groups.changed.v1")},
                )
        settle = progress.add_task("services catching up", total=None, note="")
        lag = _settle(stack, story.settle_timeout_s, lambda text: progress.update(settle, note=text))
        progress.update(settle, total=1, completed=1, note=f"lag {lag}")
    return _figures(stack, runs, story.days, lag)


def _finished(scraper: str, run_id: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """Wait for a scrape run to end; a failed run stops the story."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = httpx.get(f"{scraper}/v1/runs/{run_id}", timeout=10).json()
        if run["status"] == "failed":
            raise StackError(f"scrape run {run_id} failed: {run['error']}")
        if run["status"] == "finished":
            return run
        time.sleep(0.3)
    raise StackError(f"scrape run {run_id} did not finish in {timeout_s:.0f} s")


def _settle(stack: Stack, timeout_s: float, show: Any, *, only: set[tuple[str, str]] | None = None) -> int:
    """Wait until consumers have consumed everything and grouping's figures hold still; return the lag.

    `only` limits the wait to some (consumer group, topic) pairs; by default every one counts.
    """
    deadline = time.monotonic() + timeout_s
    grouping = stack.service_process("grouping").url
    quiet, last_stats = 0, None
    lag = -1
    while time.monotonic() < deadline:
        lag = sum(row[4] for row in stack.lag() if only is None or (row[0], row[1]) in only)
        stats = httpx.get(f"{grouping}/v1/stats", timeout=10).json()
        quiet = quiet + 1 if lag == 0 and stats == last_stats and stats["groups"] else 0
        show(f"lag {lag} messages, {stats['groups']} groups")
        if quiet >= 3:
            break
        last_stats = stats
        time.sleep(2)
    return lag


def _figures(stack: Stack, runs: list[dict[str, Any]], days: int, lag: int) -> dict[str, Any]:
    """Compare what the services answer with the storefront's truth."""
    shop = stack.config.storefront_url
    urls = {name: stack.service_process(name).url for name in SERVICES}
    truth_zones: dict[str, dict[str, str]] = httpx.get(f"{shop}/_truth/zones", timeout=30).json()["chains"]
    groups = _all(f"{urls['grouping']}/v1/groups", "groups", "next_cursor")
    placed: dict[tuple[str, str], str] = {}
    for group in groups:
        for store in [group["anchor_store_id"], *group["members"]]:
            placed[(group["chain"], store)] = group["group_id"]
    ari = {}
    for chain, zones in truth_zones.items():
        stores = sorted(zones)
        predicted = [placed.get((chain, store), f"alone:{store}") for store in stores]
        ari[chain] = round(adjusted_rand_index([zones[s] for s in stores], predicted), 3)
    grouping_stats = httpx.get(f"{urls['grouping']}/v1/stats", timeout=10).json()

    last = days - 1
    specials = httpx.get(f"{shop}/_truth/specials", params={"day": last}, timeout=30).json()["specials"]
    true = {(s["chain"], s["zone"], s["sku"]) for s in specials if s["kind"] == "true"}
    illusory = {(s["chain"], s["zone"], s["sku"]) for s in specials if s["kind"] == "illusory"}
    bargains = _all(f"{urls['bargains']}/v1/bargains", "bargains", "next_cursor", limit=1000)
    zone_of = {(chain, store): zone for chain, zones in truth_zones.items() for store, zone in zones.items()}
    discounts = {
        (b["chain"], zone_of[(b["chain"], b["store_id"])], b["sku"])
        for b in bargains
        if b["kind"] == "discount"
    }
    flags = httpx.get(f"{urls['bargains']}/v1/flags", params={"kind": "illusory"}, timeout=30).json()["flags"]
    flagged = {(f["chain"], zone_of[(f["chain"], f["store_id"])], f["sku"]) for f in flags}
    kinds: dict[str, int] = defaultdict(int)
    for bargain in bargains:
        kinds[bargain["kind"]] += 1

    substitutions = httpx.get(f"{urls['substitutions']}/v1/stats", timeout=10).json()
    infos = asyncio.run(describe_topics(stack.config.bootstrap_servers, [spec.name for spec in TOPICS]))
    messages = {info.name: info.messages for info in infos}
    dead = sum(count for name, count in messages.items() if name.endswith(".dlq"))
    return {
        "days": days,
        "scrape_runs": len(runs),
        "pages": sum(run["pages_done"] for run in runs),
        "prices_observed": sum(run["observations"] for run in runs),
        "stores": grouping_stats["stores"],
        "true_zones": sum(len(set(zones.values())) for zones in truth_zones.values()),
        "groups": grouping_stats["groups"],
        "ari_per_chain": ari,
        "prices_held": grouping_stats["prices_held"],
        "prices_answerable": grouping_stats["prices_answerable"],
        "compression_ratio": grouping_stats["compression_ratio"],
        "rescrapes_requested": messages.get("rescrapes.requested.v1", 0),
        "bargains": len(bargains),
        "bargains_by_kind": dict(kinds),
        "true_specials": len(true),
        "discounts_listed": len(discounts),
        "discount_precision": round(len(discounts & true) / len(discounts), 3) if discounts else None,
        "discount_recall": round(len(discounts & true) / len(true), 3) if true else None,
        "illusory_specials": len(illusory),
        "illusory_flagged": len(illusory & flagged),
        "illusory_listed": len(illusory & discounts),
        "top_bargains": sorted(bargains, key=lambda b: -b["score"])[:8],
        "substitutes": substitutions["substitutes"],
        "substitution_products": substitutions["products"],
        "consumer_lag": lag,
        "dead_letters": dead,
        "messages": messages,
    }


def _all(url: str, key: str, cursor_key: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Read every page of a cursor-paged list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = httpx.get(url, params=params, timeout=30).json()
        items += body[key]
        cursor = body[cursor_key]
        if cursor is None:
            return items


def story_report(figures: dict[str, Any]) -> Group:
    """Render the figures as the demo's tables."""
    overview = Table(title=f"{figures['days']} simulated days", show_header=False)
    overview.add_column("what")
    overview.add_column("figure", justify="right")
    ari = ", ".join(f"{chain} {value}" for chain, value in figures["ari_per_chain"].items())
    for label, value in (
        ("scrape runs / pages", f"{figures['scrape_runs']} / {figures['pages']:,}"),
        ("prices observed", f"{figures['prices_observed']:,}"),
        (
            "stores / true pricing zones / groups found",
            f"{figures['stores']} / {figures['true_zones']} / {figures['groups']}",
        ),
        ("groups versus true zones (adjusted Rand index)", ari),
        (
            "prices held after pruning / answerable",
            f"{figures['prices_held']:,} / {figures['prices_answerable']:,} "
            f"(x{figures['compression_ratio']})",
        ),
        ("re-scrapes requested (stale anchors)", str(figures["rescrapes_requested"])),
        (
            "true specials on the last day / discounts listed",
            f"{figures['true_specials']} / {figures['discounts_listed']}",
        ),
        ("discount precision / recall", f"{figures['discount_precision']} / {figures['discount_recall']}"),
        (
            "illusory discounts: flagged / listed (of)",
            f"{figures['illusory_flagged']} / {figures['illusory_listed']} "
            f"(of {figures['illusory_specials']})",
        ),
        ("substitutes per level", ", ".join(f"{k} {v:,}" for k, v in sorted(figures["substitutes"].items()))),
        (
            "nothing lost: consumer lag / dead letters",
            f"{figures['consumer_lag']} / {figures['dead_letters']}",
        ),
    ):
        overview.add_row(label, value)
    top = Table(title="top bargains")
    for column in ("chain", "store", "sku", "kind", "price", "compared with", "score", "reason"):
        top.add_column(column, overflow="fold")
    for b in figures["top_bargains"]:
        top.add_row(
            b["chain"],
            b["store_id"],
            b["sku"],
            b["kind"],
            f"${b['price_cents'] / 100:.2f}",
            f"${b['reference_cents'] / 100:.2f}",
            f"{b['score']:.2f}",
            b["reason"],
        )
    return Group(overview, top)
