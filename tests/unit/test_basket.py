"""The basket solver: each store's total, the exact cheapest split across at most N stores, the saving."""

import itertools
import random

import pytest

from catalogue.domain.basket import MAX_SUBSETS, Line, MultiBuy, Offer, compare_basket

pytestmark = pytest.mark.unit


def line(item: str, quantity: int = 1, **prices: int) -> Line:
    """Build a line from store=cents keywords."""
    return Line(item, quantity, {store: Offer(cents, f"{store}:{item}") for store, cents in prices.items()})


def test_each_store_is_totalled_with_quantities_and_what_it_lacks() -> None:
    lines = [line("milk", 2, a=300, b=320), line("bread", 1, a=400), line("eggs", 1, b=650)]
    result = compare_basket(lines, ["a", "b"], max_stores=1)
    totals = {t.store: (t.total_cents, t.missing) for t in result.per_store}
    assert totals == {"a": (1000, ("eggs",)), "b": (1290, ("bread",))}
    assert result.saving_cents is None  # no store sells everything


def test_the_exact_split_beats_a_greedy_choice() -> None:
    # C is the cheapest single store (12); greedy keeps it and adds the best partner (A: 6).
    # Buying at A and B, neither of them good alone, costs 3.
    lines = [line("x", a=1, b=20, c=4), line("y", a=1, b=20, c=4), line("z", a=20, b=1, c=4)]
    result = compare_basket(lines, ["a", "b", "c"], max_stores=2)
    assert result.best_store is not None
    assert result.best_store.store == "c"
    assert result.best_store.total_cents == 12
    assert result.best_split is not None
    assert result.best_split.stores == ("a", "b")
    assert result.best_split.total_cents == 3
    assert {(p.item, p.store) for p in result.best_split.purchases} == {("x", "a"), ("y", "a"), ("z", "b")}
    assert result.saving_cents == 9


def test_a_complete_split_is_preferred_to_a_cheaper_incomplete_one() -> None:
    lines = [line("milk", a=100, b=300), line("saffron", b=2000)]
    result = compare_basket(lines, ["a", "b"], max_stores=1)
    assert result.best_split is not None
    assert result.best_split.stores == ("b",)
    assert result.best_split.complete


def test_when_nothing_is_complete_the_split_covering_most_lines_wins() -> None:
    lines = [line("milk", a=100, b=300), line("bread", b=400), line("caviar")]
    result = compare_basket(lines, ["a", "b"], max_stores=2)
    assert result.best_split is not None
    assert result.best_split.missing == ("caviar",)
    assert result.best_split.stores == ("a", "b")
    assert result.best_split.total_cents == 500
    assert result.saving_cents is None


def test_no_store_is_the_best_when_none_sells_any_line() -> None:
    result = compare_basket([line("caviar"), line("truffles", 2)], ["a", "b"], max_stores=2)
    assert result.best_store is None
    assert {t.store: t.missing for t in result.per_store} == {
        "a": ("caviar", "truffles"),
        "b": ("caviar", "truffles"),
    }


def test_a_store_that_adds_nothing_is_not_counted_as_visited() -> None:
    lines = [line("milk", a=100, b=300), line("bread", a=200, b=250)]
    result = compare_basket(lines, ["a", "b"], max_stores=2)
    assert result.best_split is not None
    assert result.best_split.stores == ("a",)
    assert result.saving_cents == 0


def test_equal_answers_break_ties_by_the_shoppers_store_order() -> None:
    lines = [line("milk", a=100, b=100)]
    first = compare_basket(lines, ["b", "a"], max_stores=2)
    assert first.best_split is not None
    assert first.best_split.stores == ("b",)
    assert first.best_store is not None
    assert first.best_store.store == "b"
    second = compare_basket(lines, ["a", "b"], max_stores=2)
    assert second.best_split is not None
    assert second.best_split.stores == ("a",)


def test_purchases_name_the_product_bought() -> None:
    lines = [Line("cola", 3, {"a": Offer(250, "coles:123"), "b": Offer(240, "woolworths:9")})]
    result = compare_basket(lines, ["a", "b"], max_stores=2)
    assert result.best_split is not None
    (purchase,) = result.best_split.purchases
    assert (purchase.store, purchase.product, purchase.cost_cents) == ("b", "woolworths:9", 720)


def test_the_split_equals_a_brute_force_over_every_assignment() -> None:
    rng = random.Random(5)
    stores = ["s1", "s2", "s3", "s4", "s5"]
    for _ in range(40):
        lines = [
            Line(
                f"item{i}",
                rng.randint(1, 3),
                {s: Offer(rng.randint(50, 900)) for s in stores if rng.random() < 0.85},
            )
            for i in range(6)
        ]
        result = compare_basket(lines, stores, max_stores=2)
        best = None
        # Every way to send each line to a store, keeping those that use at most two stores.
        choices = [list(ln.offers) for ln in lines]
        if all(choices):
            for picks in itertools.product(*choices):
                if len(set(picks)) <= 2:
                    cost = sum(
                        ln.offers[s].unit_cents * ln.quantity for ln, s in zip(lines, picks, strict=True)
                    )
                    best = cost if best is None else min(best, cost)
        if best is None:
            continue
        assert result.best_split is not None
        assert result.best_split.complete
        assert result.best_split.total_cents == best


def test_a_multibuy_counts_whole_sets_and_the_rest_one_by_one() -> None:
    three_for_five = Offer(200, "a:cola", MultiBuy(3, 500))
    assert [three_for_five.cost(q) for q in (1, 2, 3, 4, 6, 7)] == [200, 400, 500, 700, 1000, 1200]
    # An "offer" dearer than buying one by one is never taken.
    assert Offer(200, None, MultiBuy(2, 450)).cost(2) == 400


def test_a_multibuy_can_move_a_line_to_another_store() -> None:
    cola = Line("cola", 3, {"a": Offer(180), "b": Offer(200, "b:cola", MultiBuy(3, 500))})
    result = compare_basket([cola], ["a", "b"], max_stores=2)
    assert result.best_split is not None
    (bought,) = result.best_split.purchases
    assert (bought.store, bought.cost_cents, bought.multibuy) == ("b", 500, MultiBuy(3, 500))
    # Bought one at a time, the same offer does not apply and the plain price wins.
    single = compare_basket([Line("cola", 1, cola.offers)], ["a", "b"], max_stores=2)
    assert single.best_split is not None
    assert [(p.store, p.cost_cents, p.multibuy) for p in single.best_split.purchases] == [("a", 180, None)]


@pytest.mark.parametrize(
    ("lines", "stores", "max_stores", "problem"),
    [
        ([line("milk", a=1)], ["a", "a"], 1, "stores"),
        ([line("milk", a=1)], ["a"], 0, "max_stores"),
        ([line("milk", a=1), line("milk", a=2)], ["a"], 1, "each item may appear once"),
        ([line("milk", 0, a=1)], ["a"], 1, "quantity of 'milk'"),
        ([line("milk", a=-1)], ["a"], 1, "negative"),
        ([Line("milk", 1, {"a": Offer(100, None, MultiBuy(0, 100))})], ["a"], 1, "multi-buy offer"),
    ],
)
def test_bad_baskets_are_refused_with_the_part_at_fault(
    lines: list[Line], stores: list[str], max_stores: int, problem: str
) -> None:
    with pytest.raises(ValueError, match=problem):
        compare_basket(lines, stores, max_stores=max_stores)


def test_a_search_too_large_is_refused() -> None:
    stores = [f"s{i}" for i in range(60)]
    with pytest.raises(ValueError, match=f"more than {MAX_SUBSETS:,}"):
        compare_basket([line("milk", s0=1)], stores, max_stores=5)


def test_an_empty_basket_costs_nothing_everywhere() -> None:
    result = compare_basket([], ["a", "b"], max_stores=2)
    assert [t.total_cents for t in result.per_store] == [0, 0]
    assert result.saving_cents == 0
