"""The demo story: the simulated world through several days, then what pricestream made of it.

Each simulated day is one scrape run of the plan (every store the first day, then the
anchors daily and a sample of members), stamped with that day's time so that history,
freshness and bargains behave as over real days. On one day each chain re-zones a few
stores, which then charge another zone's prices. Once every consumer has caught up, the
report compares each service's answers with the storefront's ground truth, and follows
each re-zoned store through grouping's groups.changed events.
"""

import asyncio
import bisect
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from contracts import CODEC, SERVICES, TOPICS
from contracts.events import StoreGroupChanged
from grouping.domain.evaluation import adjusted_rand_index
from pricestream.demo import processed_counts
from pricestream.kafka import describe_topics, high_watermarks, partitions_of
from pricestream.processes import StackError
from pricestream.stack import Stack

PRICES = "prices.scraped.v1"


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


def run_story(stack: Stack, console: Console, story: Story) -> dict[str, Any]:
    """Scrape day by day, wait until everything is processed, and return the figures against the truth."""
    shop = stack.config.storefront_url
    scraper = stack.service_process("scraper").url
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    runs: list[dict[str, Any]] = []
    grouping = stack.service_process("grouping").url
    taken_in = processed_counts(grouping)[PRICES]
    moves = {"per_chain": story.zone_moves_per_chain, "day": story.zone_move_day}
    httpx.post(f"{shop}/_control/zone-moves", json=moves, timeout=30).raise_for_status()
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
            elif day < story.days - 1 and story.night_s:
                progress.update(bar, note=f"day {day}: night, grouping checks the stores scraped...")
                _night(grouping, taken_in + sum(run["pages_done"] for run in runs), story.night_s)
        settle = progress.add_task("services catching up", total=None, note="")
        lag = _settle(stack, story.settle_timeout_s, lambda text: progress.update(settle, note=text))
        progress.update(settle, total=1, completed=1, note=f"lag {lag}")
    return _figures(stack, runs, story.days, lag)


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
    last = days - 1
    # The zones of the last day are the truth at the end: re-zoned stores count in their new zone.
    truth_zones: dict[str, dict[str, str]] = httpx.get(
        f"{shop}/_truth/zones", params={"day": last}, timeout=30
    ).json()["chains"]
    first_zones: dict[str, dict[str, str]] = httpx.get(
        f"{shop}/_truth/zones", params={"day": 0}, timeout=30
    ).json()["chains"]
    groups = _all(f"{urls['grouping']}/v1/groups", "groups", "next_cursor")
    placed: dict[tuple[str, str], str] = {}
    for group in groups:
        for store in [group["anchor_store_id"], *group["members"]]:
            placed[(group["chain"], store)] = group["group_id"]
    grouping_stats = httpx.get(f"{urls['grouping']}/v1/stats", timeout=10).json()
    moves = httpx.get(f"{shop}/_truth/zone-moves", timeout=30).json()["moves"]
    pages = httpx.get(f"{shop}/_truth/requests", timeout=30).json()["pages"]
    changes = asyncio.run(group_changes(stack.config.bootstrap_servers))
    zone_changes = follow_moves(moves, changes, runs, pages, groups, truth_zones, days=days)

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
        "ari_per_chain": _ari(truth_zones, placed),
        "ari_per_chain_first_day_zones": _ari(first_zones, placed),
        "zone_moves": len(zone_changes),
        "zone_moves_noticed": sum(change["noticed_day"] is not None for change in zone_changes),
        "zone_moves_with_new_zone": sum(change["with_new_zone"] for change in zone_changes),
        "zone_changes": zone_changes,
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


def _ari(truth_zones: dict[str, dict[str, str]], placed: dict[tuple[str, str], str]) -> dict[str, float]:
    """Return each chain's adjusted Rand index of the groups found against the given zones."""
    ari = {}
    for chain, zones in truth_zones.items():
        stores = sorted(zones)
        predicted = [placed.get((chain, store), f"alone:{store}") for store in stores]
        ari[chain] = round(adjusted_rand_index([zones[s] for s in stores], predicted), 3)
    return ari


async def group_changes(bootstrap_servers: str) -> list[tuple[datetime, dict[str, Any]]]:
    """Read every groups.changed event the broker holds: (when grouping made it, payload), oldest first."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await consumer.start()
    found: list[tuple[datetime, int, dict[str, Any]]] = []
    try:
        tps = await partitions_of(consumer, "groups.changed.v1")
        starts = await consumer.beginning_offsets(tps) if tps else {}
        ends = await high_watermarks(bootstrap_servers, dict(starts))
        for tp in tps:
            if starts[tp] >= ends[tp]:
                continue
            consumer.assign([tp])
            consumer.seek(tp, starts[tp])
            done = False
            while not done:
                records = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
                for record in records:
                    event = CODEC.decode(record.value or b"", dict(record.headers or ()))
                    if isinstance(event, StoreGroupChanged):
                        found.append((event.occurred_at, record.offset, event.payload.model_dump()))
                done = not records or records[-1].offset + 1 >= ends[tp]
    finally:
        await consumer.stop()
    # Events of one group keep their order (one partition); across groups, grouping's clock orders them.
    return [(at, payload) for at, _, payload in sorted(found, key=lambda item: (item[0], item[1]))]


def follow_moves(
    moves: list[dict[str, Any]],
    changes: list[tuple[datetime, dict[str, Any]]],
    runs: list[dict[str, Any]],
    pages: dict[str, int],
    groups: list[dict[str, Any]],
    truth_zones: dict[str, dict[str, str]],
    *,
    days: int,
) -> list[dict[str, Any]]:
    """Follow each re-zoned store through grouping: when it was noticed, when it joined its new zone.

    Noticed is the first change of the store's group after the move: it left, its group dissolved,
    or, for an anchor, its group's stores changed. With its new zone: in a group most of whose
    other stores are in that zone on the last day. Grouping's events carry the wall-clock time they
    were made and a simulated day lasts from its run's start to the next one's, so an event counts
    on the day the shop's clock showed.
    """
    starts = [datetime.fromisoformat(run["started_at"]) for run in runs]

    def day_at(moment: datetime) -> int:
        return max(0, bisect.bisect_right(starts, moment) - 1)

    # The shop counts pages served by chain/store/category/page/day: the days each store was scraped.
    scraped: dict[tuple[str, str], set[int]] = defaultdict(set)
    for key in pages:
        page_chain, page_store, *_, page_day = key.split("/")
        scraped[(page_chain, page_store)].add(int(page_day))

    def zone_of_group(chain: str, stores: set[str], store: str) -> str | None:
        """Return the true zone most of a group's other stores are in (None for a store alone)."""
        others = Counter(truth_zones[chain][s] for s in stores if s != store)
        return others.most_common(1)[0][0] if others else None

    end_groups = {(g["chain"], s): g for g in groups for s in [g["anchor_store_id"], *g["members"]]}
    rows = []
    for move in moves:
        chain, store, moved = move["chain"], move["store_id"], move["day"]
        if moved >= days:
            continue
        noticed, joined = _reactions(
            chain,
            store,
            move["to_zone"],
            [(day_at(at), at >= starts[moved], c) for at, c in changes],
            zone_of_group,
        )
        end = end_groups.get((chain, store))
        end_zone = (
            None if end is None else zone_of_group(chain, {end["anchor_store_id"], *end["members"]}, store)
        )
        rows.append(
            {
                "chain": chain,
                "store_id": store,
                "from_zone": move["from_zone"],
                "to_zone": move["to_zone"],
                "day_moved": moved,
                "first_scraped_after_move": min(
                    (day for day in scraped[(chain, store)] if day >= moved), default=None
                ),
                "noticed_day": None if noticed is None else noticed[0],
                "noticed_as": None if noticed is None else noticed[1],
                "with_new_zone_since": joined,
                "end_group": None if end is None else end["group_id"],
                "end_anchor": None if end is None else end["anchor_store_id"],
                "end_group_size": 0 if end is None else 1 + len(end["members"]),
                "end_group_zone": end_zone,
                "with_new_zone": end_zone == move["to_zone"],
            }
        )
    return rows


def _reactions(
    chain: str,
    store: str,
    to_zone: str,
    changes: list[tuple[int, bool, dict[str, Any]]],
    zone_of_group: Callable[[str, set[str], str], str | None],
) -> tuple[tuple[int, str] | None, int | None]:
    """Replay group changes (day, after the move, payload) for one moved store.

    Return (day and reason of the first change of its group after the move, or None) and the day
    since which it is in a group of its new zone (None if it is not at the end).
    """
    group_of_store: str | None = None
    before: tuple[str | None, frozenset[str]] = (None, frozenset())
    members: dict[str, set[str]] = {}
    anchors: dict[str, str] = {}
    noticed: tuple[int, str] | None = None
    joined: int | None = None
    for day, after_move, change in changes:
        if change["chain"] != chain:
            continue
        group = change["group_id"]
        dissolved = change["reason"] == "dissolved"
        members[group] = set() if dissolved else {change["anchor_store_id"], *change["member_store_ids"]}
        anchors[group] = change["anchor_store_id"]
        if store in members[group]:
            group_of_store = group
        elif group_of_store == group:
            group_of_store = None
        # An anchor stays in its group while grouping splits its old zone's members off (or merges
        # its new zone's in): for an anchor, a change of its group's stores counts too.
        leads = group_of_store is not None and anchors[group_of_store] == store
        mates = frozenset(members[group_of_store]) if leads and group_of_store else frozenset()
        if not after_move:
            before = (group_of_store, mates)
            continue
        if noticed is None and group_of_store != before[0]:
            noticed = (day, change["reason"])
        elif noticed is None and leads and mates != before[1]:
            noticed = (day, f"its group {change['reason']}")
        in_new_zone = group_of_store is not None and (
            zone_of_group(chain, members[group_of_store], store) == to_zone
        )
        if not in_new_zone:
            joined = None
        elif joined is None:
            joined = day
    return noticed, joined


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
    ari_first = ", ".join(
        f"{chain} {value}" for chain, value in figures["ari_per_chain_first_day_zones"].items()
    )
    for label, value in (
        ("scrape runs / pages", f"{figures['scrape_runs']} / {figures['pages']:,}"),
        ("prices observed", f"{figures['prices_observed']:,}"),
        (
            "stores / true pricing zones / groups found",
            f"{figures['stores']} / {figures['true_zones']} / {figures['groups']}",
        ),
        ("groups versus true zones at the end (adjusted Rand index)", ari),
        ("groups versus the zones before the moves", ari_first),
        (
            "stores re-zoned / noticed by grouping / ending with their new zone",
            f"{figures['zone_moves']} / {figures['zone_moves_noticed']} / "
            f"{figures['zone_moves_with_new_zone']}",
        ),
        (
            "prices held after pruning / answerable",
            f"{figures['prices_held']:,} / {figures['prices_answerable']:,} "
            f"(x{figures['compression_ratio']})",
        ),
        (
            "re-scrapes requested (stale anchors; members of merged or moved anchors)",
            str(figures["rescrapes_requested"]),
        ),
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
    return Group(overview, zone_changes_table(figures["zone_changes"]), top)


def zone_changes_table(changes: list[dict[str, Any]]) -> Table:
    """Render how grouping followed each re-zoned store, day by simulated day."""
    table = Table(title="zone changes (truth: the storefront's moves)")
    columns = (
        "chain",
        "store",
        "moved on day",
        "zone before -> after",
        "first scraped after",
        "grouping noticed",
        "with its new zone since",
        "at the end: group (anchor, stores)",
        "group's zone",
    )
    for column in columns:
        table.add_column(column, overflow="fold")

    def day(value: int | None) -> str:
        return "-" if value is None else f"day {value}"

    for c in changes:
        ok = "[green]" if c["with_new_zone"] else "[red]"
        end = "no group" if c["end_group"] is None else f"{c['end_anchor']}, {c['end_group_size']} stores"
        table.add_row(
            c["chain"],
            c["store_id"],
            str(c["day_moved"]),
            f"{c['from_zone']} -> {c['to_zone']}",
            day(c["first_scraped_after_move"]),
            "-" if c["noticed_day"] is None else f"day {c['noticed_day']} ({c['noticed_as']})",
            day(c["with_new_zone_since"]),
            end,
            f"{ok}{c['end_group_zone'] or 'alone'}[/]",
        )
    return table
