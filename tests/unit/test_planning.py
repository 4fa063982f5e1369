"""The scrape planner: re-scrapes first, new stores discovered, anchors due, members sampled."""

from datetime import UTC, datetime, timedelta

import pytest

from scraper.domain.planning import PlanPolicy, StoreRef, StoreState, plan_stores

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
POLICY = PlanPolicy(
    anchor_interval=timedelta(hours=24), member_check_interval=timedelta(days=7), member_sample_share=0.25
)


def _store(
    store_id: str, role: str = "unknown", group: str | None = None, age_h: float | None = None
) -> StoreState:
    scraped = None if age_h is None else NOW - timedelta(hours=age_h)
    return StoreState("fm", store_id, role, group, scraped)  # type: ignore[arg-type]


def test_new_stores_are_discovered_and_due_anchors_scraped() -> None:
    stores = [
        _store("new"),
        _store("a-due", "anchor", "g1", age_h=30),
        _store("a-fresh", "anchor", "g2", age_h=2),
    ]
    planned = plan_stores(stores, rescrape=set(), now=NOW, policy=POLICY)
    assert [(p.store_id, p.reason) for p in planned] == [("new", "discover"), ("a-due", "anchor")]


def test_rescrape_requests_come_first_even_when_not_due() -> None:
    stores = [_store("new"), _store("a-fresh", "anchor", "g1", age_h=1)]
    planned = plan_stores(stores, rescrape={StoreRef("fm", "a-fresh")}, now=NOW, policy=POLICY)
    assert [(p.store_id, p.reason) for p in planned] == [("a-fresh", "rescrape"), ("new", "discover")]
    only = plan_stores(stores, rescrape={StoreRef("fm", "a-fresh")}, now=NOW, policy=POLICY, scope="rescrape")
    assert [p.store_id for p in only] == ["a-fresh"]


def test_members_are_sampled_oldest_check_first_and_never_all() -> None:
    members = [_store(f"m{i}", "member", "g1", age_h=24 * (8 + i)) for i in range(8)]
    members.append(_store("m-recent", "member", "g1", age_h=5))
    planned = plan_stores(
        [_store("a", "anchor", "g1", age_h=1), *members], rescrape=set(), now=NOW, policy=POLICY
    )
    sampled = [p.store_id for p in planned if p.reason == "member_check"]
    assert sampled == ["m7", "m6", "m5"], "ceil(9 * 0.25) = 3 members, least recently scraped first"
    assert "m-recent" not in sampled


def test_scope_all_takes_every_store_once() -> None:
    stores = [_store("a", "anchor", "g1", age_h=1), _store("m", "member", "g1", age_h=1), _store("n")]
    planned = plan_stores(stores, rescrape={StoreRef("fm", "m")}, now=NOW, policy=POLICY, scope="all")
    assert [(p.store_id, p.reason) for p in planned] == [("m", "rescrape"), ("a", "full"), ("n", "full")]
