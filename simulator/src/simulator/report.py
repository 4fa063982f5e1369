"""The demo's tables: the story's figures, the zone changes, and example substitutions against the truth."""

import time
from typing import Any

from rich.console import Group
from rich.table import Table

from servicekit.local_http import local_http


def story_report(figures: dict[str, Any]) -> Group:
    """Render the figures as the demo's tables."""
    overview = Table(title=f"{figures['days']} simulated days", show_header=False)
    overview.add_column("what")
    overview.add_column("figure", justify="right")
    for label, value in _overview(figures):
        overview.add_row(label, value)
    zones = zone_changes_table(figures["zone_changes"])
    return Group(overview, zones, top_bargains_table(figures["top_bargains"]))


def _overview(f: dict[str, Any]) -> list[tuple[str, str]]:
    """Return the overview's rows: what, and its figure."""
    ari = ", ".join(f"{chain} {value}" for chain, value in f["ari_per_chain"].items())
    ari_first = ", ".join(f"{chain} {value}" for chain, value in f["ari_per_chain_first_day_zones"].items())
    substitutes = ", ".join(f"{k} {v:,}" for k, v in sorted(f["substitutes"].items()))
    return [
        ("scrape runs / pages", f"{f['scrape_runs']} / {f['pages']:,}"),
        ("prices observed", f"{f['prices_observed']:,}"),
        ("stores / true pricing zones / groups found", f"{f['stores']} / {f['true_zones']} / {f['groups']}"),
        ("groups versus true zones at the end (adjusted Rand index)", ari),
        ("groups versus the zones before the moves", ari_first),
        (
            "stores re-zoned / noticed by grouping / ending with their new zone",
            f"{f['zone_moves']} / {f['zone_moves_noticed']} / {f['zone_moves_with_new_zone']}",
        ),
        (
            "prices held after pruning / answerable",
            f"{f['prices_held']:,} / {f['prices_answerable']:,} (x{f['compression_ratio']})",
        ),
        (
            "re-scrapes requested (stale anchors; members of merged or moved anchors)",
            str(f["rescrapes_requested"]),
        ),
        (
            "true specials on the last day / discounts listed (members-only apart)",
            f"{f['true_specials']} / {f['discounts_listed']} ({f.get('members_only_listed', 0)})",
        ),
        ("discount precision / recall", f"{f['discount_precision']} / {f['discount_recall']}"),
        (
            "illusory discounts: flagged / listed (of)",
            f"{f['illusory_flagged']} / {f['illusory_listed']} (of {f['illusory_specials']})",
        ),
        ("substitutes per level", substitutes),
        ("nothing lost: consumer lag / dead letters", f"{f['consumer_lag']} / {f['dead_letters']}"),
    ]


def top_bargains_table(bargains: list[dict[str, Any]]) -> Table:
    """Render the best bargains found, with what each was compared with."""
    top = Table(title="top bargains")
    for column in ("chain", "store", "sku", "kind", "price", "compared with", "score", "reason"):
        top.add_column(column, overflow="fold")
    for b in bargains:
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
    return top


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


def example_substitutions(storefront_url: str, substitutions_url: str, *, timeout_s: float = 60.0) -> Table:
    """Show, for a product of each true equivalence level, the best substitute the service found per level.

    A world of real product names knows no equivalences: its first chain's products are shown
    instead, the first found with a substitute at another chain at L1 or L2, and one at L3.
    """
    equivalences = (
        local_http().get(f"{storefront_url}/_truth/equivalences", timeout=10).json()["equivalences"]
    )
    if not equivalences:
        return _untold_examples(storefront_url, substitutions_url, timeout_s=timeout_s)
    picks: dict[str, dict[str, str]] = {}
    for equivalence in equivalences:
        picks.setdefault(equivalence["level"], equivalence)
    table = _examples_table("example substitutions (truth: the storefront's equivalences)")
    for level, pick in sorted(picks.items()):
        url = f"{substitutions_url}/v1/products/{pick['chain_a']}/{pick['sku_a']}/substitutions"
        found = _once_computed(url, timeout_s)
        if found is None:
            table.add_row(f"{pick['chain_a']}/{pick['sku_a']}", "-", "not computed yet", "", "", "", level)
            continue
        _add_best(table, found, truth=(pick["chain_b"], pick["sku_b"], level))
    return table


def _untold_examples(
    storefront_url: str, substitutions_url: str, *, timeout_s: float, tries: int = 200
) -> Table:
    """Show products until one has its same item at another chain (L1, L2) and one an L3: no truth to tell."""
    table = _examples_table(
        "example substitutions (real product names: the storefront names no equivalences)", truth=False
    )
    chain = local_http().get(f"{storefront_url}/v1/chains", timeout=10).json()["chains"][0]["chain"]
    prices = local_http().get(f"{storefront_url}/_truth/prices", params={"chain": chain}, timeout=30).json()
    skus = list(dict.fromkeys(str(row["sku"]) for row in prices["prices"]))[:tries]
    wanted = [{"L1", "L2"}, {"L3"}]
    deadline = time.monotonic() + timeout_s
    for sku in skus:
        if not wanted or time.monotonic() > deadline:
            break
        url = f"{substitutions_url}/v1/products/{chain}/{sku}/substitutions"
        found = _once_computed(url, 1.0)
        if found is None:
            continue
        # L1 and L2 are at another chain by their nature: a chain lists an item once.
        levels = {str(row["level"]) for row in found["substitutes"]}
        covered = [levels_wanted for levels_wanted in wanted if levels & levels_wanted]
        if covered:
            wanted = [levels_wanted for levels_wanted in wanted if levels_wanted not in covered]
            _add_best(table, found, truth=None)
    return table


def _examples_table(title: str, *, truth: bool = True) -> Table:
    """Return the examples' empty table, with a column for the truth where one is told."""
    table = Table(title=title)
    for column in ("product", "level", "substitute", "at", "score", "reason", *(["truth"] if truth else [])):
        table.add_column(column, overflow="fold")
    return table


def _add_best(table: Table, found: dict[str, Any], *, truth: tuple[str, str, str] | None) -> None:
    """Add a product's best substitute per level; the true pair's where one is told."""
    best: dict[str, dict[str, Any]] = {}
    for row in found["substitutes"]:
        if truth is not None and (row["chain"], row["sku"]) == truth[:2]:
            best[str(row["level"])] = row  # the true pair is the one worth showing
        else:
            best.setdefault(str(row["level"]), row)
    for shown, (at_level, row) in enumerate(sorted(best.items())):
        is_truth = truth is not None and (row["chain"], row["sku"]) == truth[:2]
        cells = [
            str(found["name"]) if shown == 0 else "",
            at_level,
            str(row["name"]),
            str(row["chain"]),
            f"{row['score']:.2f}",
            str(row["reason"]),
        ]
        table.add_row(*cells, *([] if truth is None else [f"{truth[2]} pair" if is_truth else ""]))


def _once_computed(url: str, timeout_s: float) -> dict[str, Any] | None:
    """Return a product's substitutes once the service has computed them (None if not in time)."""
    deadline = time.monotonic() + timeout_s
    response = local_http().get(url, timeout=10)
    while response.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.5)
        response = local_http().get(url, timeout=10)
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()
    return found
