"""The demo story: the simulated world through several days, then what pricestream made of it.

Each simulated day is one scrape run of the plan (every store the first day, then the
anchors daily and a sample of members), stamped with that day's time so that history,
freshness and bargains behave as over real days. On one day each chain re-zones a few
stores, which then charge another zone's prices. Once every consumer has caught up, the
report compares each service's answers with the storefront's ground truth, and follows
each re-zoned store through grouping's groups.changed events.
"""

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from contracts import TOPICS, Event
from contracts.events import StoreGroupChanged
from servicekit.local_http import local_http
from servicekit.metrics import processed_counts
from simulator.evaluation import ari_per_chain, follow_moves

PRICES = "prices.scraped.v1"
GROUP_CHANGES = "groups.changed.v1"

Figures = dict[str, Any]


class StoryError(RuntimeError):
    """The story cannot go on: the scraper refused a day or a run failed."""


class RunningStack(Protocol):
    """What the story reads of a running pricestream stack; pricestream's `Stack` is one."""

    @property
    def storefront_url(self) -> str:
        """Return the simulated storefront's base URL."""
        ...

    def service_url(self, name: str) -> str:
        """Return a service's base URL."""
        ...

    def lag(self) -> Sequence[tuple[str, str, int, int, int]]:
        """Return (consumer group, topic, committed, end, lag) for every service's subscriptions."""
        ...

    def topic_messages(self, names: Sequence[str]) -> dict[str, int]:
        """Return how many messages each of these topics holds (topics missing are left out)."""
        ...

    def topic_events(self, name: str) -> Sequence[tuple[int, Event]]:
        """Return every event a topic holds with its offset, each partition in order."""
        ...


@dataclass(frozen=True, slots=True)
class Story:
    """How many days to run, which stores move zone when, and how long to wait for the services."""

    days: int = 16
    settle_timeout_s: float = 240.0
    # Members are sampled weekly from day 7 on: a move on day 3 is seen by the first samples, and
    # grouping has a week left to place the moved stores again.
    zone_moves_per_chain: int = 2
    zone_move_day: int = 3
    # The night after a day's scrape: grouping judges stores whose prices went quiet 2 s ago
    # (GROUPING_QUIET_S) in cycles of 1 s, and regroups a chain once none of its stores got
    # prices for that long (a busy chain only every GROUPING_REGROUP_BUSY_EVERY_S, 60 s). A night
    # of 5 s or more would let the scraper re-scrape at the wall clock's time (see _night).
    night_s: float = 3.5


def day_times(days: int, *, now: datetime | None = None) -> list[datetime]:
    """Return the moment each simulated day stands for: the last day an hour ago, one day apart."""
    last = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    return [last - timedelta(days=days - 1 - day) for day in range(days)]


def run_story(stack: RunningStack, console: Console, story: Story) -> Figures:
    """Scrape day by day, wait until everything is processed, and return the figures against the truth."""
    shop = stack.storefront_url
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    runs: list[dict[str, Any]] = []
    grouping = stack.service_url("grouping")
    taken_in = processed_counts(grouping)[PRICES]
    moves = {"per_chain": story.zone_moves_per_chain, "day": story.zone_move_day}
    local_http().post(f"{shop}/_control/zone-moves", json=moves, timeout=30).raise_for_status()
    with Progress(*columns, TextColumn("{task.fields[note]}"), console=console) as progress:
        bar = progress.add_task("simulated days", total=story.days, note="")
        for day, moment in enumerate(day_times(story.days)):
            run = _scrape_day(stack, day, moment)
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
                    only={("grouping", PRICES), ("scraper", GROUP_CHANGES)},
                )
            elif day < story.days - 1 and story.night_s:
                progress.update(bar, note=f"day {day}: night, grouping checks the stores scraped...")
                _night(grouping, taken_in + sum(run["pages_done"] for run in runs), story.night_s)
        settle = progress.add_task("services catching up", total=None, note="")
        lag = _settle(stack, story.settle_timeout_s, lambda text: progress.update(settle, note=text))
        progress.update(settle, total=1, completed=1, note=f"lag {lag}")
    return _figures(stack, runs, story.days, lag)


def _scrape_day(stack: RunningStack, day: int, moment: datetime) -> dict[str, Any]:
    """Set the shop's clock to a day and scrape it as of that day's moment; return the finished run."""
    local_http().post(f"{stack.storefront_url}/v1/clock", json={"day": day}, timeout=10).raise_for_status()
    scraper = stack.service_url("scraper")
    body = {"scope": "plan", "day": day, "as_of": moment.isoformat()}
    response = local_http().post(f"{scraper}/v1/runs", json=body, timeout=60)
    if response.status_code != 202:
        raise StoryError(f"the scraper refused day {day}: {response.status_code} {response.text}")
    return _finished(scraper, response.json()["run_id"])


def _night(grouping: str, pages: int, night_s: float, timeout_s: float = 60.0) -> None:
    """Let a night pass after a day's run: grouping takes in every page scraped so far (one event each).

    The night counts from the run's end and is kept shorter than the scraper's wait for work
    (SCRAPER_RESCRAPE_POLL_S, 5 s): an idle scraper serves pending re-scrapes in a run of its own,
    observed at the wall clock's time, after every simulated day; the next day's run serves them.
    """
    dusk = time.monotonic()
    while processed_counts(grouping)[PRICES] < pages and time.monotonic() < dusk + timeout_s:
        time.sleep(0.2)
    time.sleep(max(0.0, dusk + night_s - time.monotonic()))


def _finished(scraper: str, run_id: str, timeout_s: float = 300.0) -> dict[str, Any]:
    """Wait for a scrape run to end; a failed run stops the story."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        run: dict[str, Any] = local_http().get(f"{scraper}/v1/runs/{run_id}", timeout=10).json()
        if run["status"] == "failed":
            raise StoryError(f"scrape run {run_id} failed: {run['error']}")
        if run["status"] == "finished":
            return run
        time.sleep(0.3)
    raise StoryError(f"scrape run {run_id} did not finish in {timeout_s:.0f} s")


def _settle(
    stack: RunningStack,
    timeout_s: float,
    show: Callable[[str], object],
    *,
    only: set[tuple[str, str]] | None = None,
) -> int:
    """Wait until consumers have consumed everything and grouping's figures hold still; return the lag.

    `only` limits the wait to some (consumer group, topic) pairs; by default every one counts.
    """
    deadline = time.monotonic() + timeout_s
    grouping = stack.service_url("grouping")
    quiet, last_stats = 0, None
    lag = -1
    while time.monotonic() < deadline:
        lag = sum(row[4] for row in stack.lag() if only is None or (row[0], row[1]) in only)
        stats = local_http().get(f"{grouping}/v1/stats", timeout=10).json()
        quiet = quiet + 1 if lag == 0 and stats == last_stats and stats["groups"] else 0
        show(f"lag {lag} messages, {stats['groups']} groups")
        if quiet >= 3:
            break
        last_stats = stats
        time.sleep(2)
    return lag


# --- the figures: each service's answers against the storefront's truth --------------------------


def _figures(stack: RunningStack, runs: list[dict[str, Any]], days: int, lag: int) -> Figures:
    """Compare what the services answer with the storefront's truth."""
    # The zones of the last day are the truth at the end: re-zoned stores count in their new zone.
    truth_zones = _truth(stack, "zones", "chains", day=days - 1)
    grouping = _grouping_figures(stack, runs, days, truth_zones)
    bargains = _bargain_figures(stack, truth_zones, day=days - 1)
    substitutions = local_http().get(f"{stack.service_url('substitutions')}/v1/stats", timeout=10).json()
    messages = stack.topic_messages([spec.name for spec in TOPICS])
    return {
        "days": days,
        "scrape_runs": len(runs),
        "pages": sum(run["pages_done"] for run in runs),
        "prices_observed": sum(run["observations"] for run in runs),
        **grouping,
        "rescrapes_requested": messages.get("rescrapes.requested.v1", 0),
        **bargains,
        "substitutes": substitutions["substitutes"],
        "substitution_products": substitutions["products"],
        "consumer_lag": lag,
        "dead_letters": sum(count for name, count in messages.items() if name.endswith(".dlq")),
        "messages": messages,
    }


def _grouping_figures(
    stack: RunningStack, runs: list[dict[str, Any]], days: int, truth_zones: dict[str, dict[str, str]]
) -> Figures:
    """Compare grouping's groups with the true zones, and follow each re-zoned store through them."""
    url = stack.service_url("grouping")
    first_zones = _truth(stack, "zones", "chains", day=0)
    groups = _all(f"{url}/v1/groups", "groups", "next_cursor")
    placed = {
        (group["chain"], store): group["group_id"]
        for group in groups
        for store in [group["anchor_store_id"], *group["members"]]
    }
    stats = local_http().get(f"{url}/v1/stats", timeout=10).json()
    moves = _truth(stack, "zone-moves", "moves")
    pages = _truth(stack, "requests", "pages")
    changes = group_changes(stack)
    zone_changes = follow_moves(moves, changes, runs, pages, groups, truth_zones, days=days)
    return {
        "stores": stats["stores"],
        "true_zones": sum(len(set(zones.values())) for zones in truth_zones.values()),
        "groups": stats["groups"],
        "ari_per_chain": ari_per_chain(truth_zones, placed),
        "ari_per_chain_first_day_zones": ari_per_chain(first_zones, placed),
        "zone_moves": len(zone_changes),
        "zone_moves_noticed": sum(change["noticed_day"] is not None for change in zone_changes),
        "zone_moves_with_new_zone": sum(change["with_new_zone"] for change in zone_changes),
        "zone_changes": zone_changes,
        "prices_held": stats["prices_held"],
        "prices_answerable": stats["prices_answerable"],
        "compression_ratio": stats["compression_ratio"],
    }


def _bargain_figures(stack: RunningStack, truth_zones: dict[str, dict[str, str]], *, day: int) -> Figures:
    """Compare bargains' discounts and illusory flags with the specials the shop ran on a day."""
    url = stack.service_url("bargains")
    specials = _truth(stack, "specials", "specials", day=day)
    bargains = _all(f"{url}/v1/bargains", "bargains", "next_cursor", limit=1000)
    flags = local_http().get(f"{url}/v1/flags", params={"kind": "illusory"}, timeout=30).json()["flags"]
    return bargain_figures(specials, bargains, flags, truth_zones)


def bargain_figures(
    specials: list[dict[str, Any]],
    bargains: list[dict[str, Any]],
    flags: list[dict[str, Any]],
    truth_zones: dict[str, dict[str, str]],
) -> Figures:
    """Score the bargains listed and the illusory flags against the true and illusory specials.

    A special holds for a zone: a store's bargain or flag counts for the zone the store is in.
    A members-only discount (its id starts `members:`) is not a shelf special: it is counted apart.
    """
    true = {(s["chain"], s["zone"], s["sku"]) for s in specials if s["kind"] == "true"}
    illusory = {(s["chain"], s["zone"], s["sku"]) for s in specials if s["kind"] == "illusory"}
    zone_of = {(chain, store): zone for chain, zones in truth_zones.items() for store, zone in zones.items()}
    discounts = {
        (b["chain"], zone_of[(b["chain"], b["store_id"])], b["sku"])
        for b in bargains
        if b["kind"] == "discount" and not b["bargain_id"].startswith("members:")
    }
    members_only = sum(1 for b in bargains if b["bargain_id"].startswith("members:"))
    flagged = {(f["chain"], zone_of[(f["chain"], f["store_id"])], f["sku"]) for f in flags}
    kinds: dict[str, int] = defaultdict(int)
    for bargain in bargains:
        kinds[bargain["kind"]] += 1
    return {
        "bargains": len(bargains),
        "bargains_by_kind": dict(kinds),
        "true_specials": len(true),
        "discounts_listed": len(discounts),
        "members_only_listed": members_only,
        "discount_precision": round(len(discounts & true) / len(discounts), 3) if discounts else None,
        "discount_recall": round(len(discounts & true) / len(true), 3) if true else None,
        "illusory_specials": len(illusory),
        "illusory_flagged": len(illusory & flagged),
        "illusory_listed": len(illusory & discounts),
        "top_bargains": sorted(bargains, key=lambda b: -b["score"])[:8],
    }


def group_changes(stack: RunningStack) -> list[tuple[datetime, dict[str, Any]]]:
    """Return every groups.changed event the broker holds: (when grouping made it, payload), oldest first."""
    found = [
        (event.occurred_at, offset, event.payload.model_dump())
        for offset, event in stack.topic_events(GROUP_CHANGES)
        if isinstance(event, StoreGroupChanged)
    ]
    # Events of one group keep their order (one partition); across groups, grouping's clock orders them.
    return [(at, payload) for at, _, payload in sorted(found, key=lambda item: (item[0], item[1]))]


def _truth(stack: RunningStack, what: str, key: str, **params: int) -> Any:
    """Read one of the storefront's truths (`/_truth/<what>`) and return its `key` field."""
    return local_http().get(f"{stack.storefront_url}/_truth/{what}", params=params, timeout=30).json()[key]


def _all(url: str, key: str, cursor_key: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """Read every page of a cursor-paged list."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = local_http().get(url, params=params, timeout=30).json()
        items += body[key]
        cursor = body[cursor_key]
        if cursor is None:
            return items
