"""Which stores a scrape run visits, and why: the pure scrape planner.

Most stores charge what their group's anchor charges, so routine runs fetch anchors
only. Stores not yet in a group are scraped so grouping can place them; members are
sampled now and then so grouping can check they still match; explicit re-scrape
requests (a stale anchor) go first.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Role = Literal["unknown", "anchor", "member"]
Reason = Literal["rescrape", "discover", "anchor", "member_check", "full"]
Scope = Literal["plan", "all", "rescrape"]


@dataclass(frozen=True, slots=True)
class StoreRef:
    """Name one store of one chain."""

    chain: str
    store_id: str


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A store as the storefront's directory lists it."""

    store_id: str
    name: str
    state: str | None
    postcode: str | None


@dataclass(frozen=True, slots=True)
class StoreState:
    """What the scraper knows of a store when planning."""

    chain: str
    store_id: str
    role: Role
    group_id: str | None
    last_scraped_at: datetime | None

    @property
    def ref(self) -> StoreRef:
        """Return the store's name."""
        return StoreRef(self.chain, self.store_id)


@dataclass(frozen=True, slots=True)
class Category:
    """A category of a chain's storefront and how many pages it lists."""

    slug: str
    pages: int


@dataclass(frozen=True, slots=True)
class Task:
    """One page of one category at one store, within a run."""

    run_id: str
    chain: str
    store_id: str
    category: str
    page: int
    reason: Reason


@dataclass(frozen=True, slots=True)
class PlanPolicy:
    """How often anchors are scraped and how many members are sampled."""

    anchor_interval: timedelta
    member_check_interval: timedelta
    member_sample_share: float


@dataclass(frozen=True, slots=True)
class PlannedStore:
    """A store a run will scrape, with the reason it was chosen."""

    chain: str
    store_id: str
    reason: Reason


def _due(store: StoreState, interval: timedelta, now: datetime) -> bool:
    return store.last_scraped_at is None or now - store.last_scraped_at >= interval


def plan_stores(
    stores: list[StoreState],
    *,
    rescrape: set[StoreRef],
    now: datetime,
    policy: PlanPolicy,
    scope: Scope = "plan",
) -> list[PlannedStore]:
    """Choose the stores of a run, re-scrapes first, each store at most once."""
    planned: dict[StoreRef, PlannedStore] = {}

    def add(store: StoreState, reason: Reason) -> None:
        planned.setdefault(store.ref, PlannedStore(store.chain, store.store_id, reason))

    for store in stores:
        if store.ref in rescrape:
            add(store, "rescrape")
    if scope == "rescrape":
        return list(planned.values())
    if scope == "all":
        for store in stores:
            add(store, "full")
        return list(planned.values())

    for store in stores:
        if store.role == "unknown":
            add(store, "discover")
    for store in stores:
        if store.role == "anchor" and _due(store, policy.anchor_interval, now):
            add(store, "anchor")

    members: dict[str | None, list[StoreState]] = defaultdict(list)
    for store in stores:
        if store.role == "member":
            members[store.group_id].append(store)
    for group in members.values():
        # Sample a share of each group's members, those checked longest ago first.
        quota = math.ceil(len(group) * policy.member_sample_share)
        due = [s for s in group if _due(s, policy.member_check_interval, now)]
        due.sort(key=lambda s: (s.last_scraped_at is not None, s.last_scraped_at or now, s.store_id))
        for store in due[:quota]:
            add(store, "member_check")
    return list(planned.values())


def run_tasks(run_id: str, planned: list[PlannedStore], categories: dict[str, list[Category]]) -> list[Task]:
    """List every page a run has to fetch: each category's pages at each planned store."""
    return [
        Task(run_id, store.chain, store.store_id, category.slug, page, store.reason)
        for store in planned
        for category in categories[store.chain]
        for page in range(1, category.pages + 1)
    ]
