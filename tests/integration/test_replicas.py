"""Scale-out on one stack: grouping, bargains and the catalogue run two replicas each in their groups.

Each replica is a process of its own with its own HTTP port, in the service's consumer group, so
the broker gives each one some of the topics' partitions. The tests publish prices of many
stores, and compare every service's state with a reference folded from the events in publish
order: each event applied once, each store's events in their order, whichever replica took them.
"""

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence

import pytest

from contracts import Event, topic
from pricestream.processes import port_in_use
from pricestream.stack import Stack
from servicekit.metrics import processed_counts
from tests.integration.test_faults import (
    PriceReference,
    assert_bargains_history_matches,
    assert_grouping_matches,
    drained,
    lags,
    latest_held,
    price_events,
    reference_of,
    send,
    unprocessed,
)
from testsupport import running_stack, wait_until

pytestmark = pytest.mark.integration

PRICES = topic("prices.scraped.v1")
REPLICAS = {"grouping": 2, "bargains": 2, "catalogue": 2}
SCALED = tuple(REPLICAS)
GROUPS = {name: [PRICES.name] for name in SCALED}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own, with two replicas of grouping, bargains and the catalogue (one is killed)."""
    home = tmp_path_factory.mktemp("replicas") / ".pricestream"
    with running_stack(home, "replicas stack", replicas=REPLICAS) as stack:
        yield stack


def handled(stack: Stack, process: str) -> int:
    """Return the price events one replica has handled since it started (its /metrics)."""
    return processed_counts(stack.service_process(process).url).get(PRICES.name, 0)


def assert_catalogue_matches(stack: Stack, chain: str, reference: PriceReference) -> None:
    """The catalogue's current prices equal the newest observation of every store's product."""
    assert latest_held(stack, "catalogue", "prices", chain) == reference.latest
    assert unprocessed(stack, "catalogue", reference.events) == 0


def assert_all_match(stack: Stack, chain: str, reference: PriceReference) -> None:
    """Grouping, bargains and the catalogue each hold exactly the reference's state."""
    assert_grouping_matches(stack, chain, reference)
    assert_bargains_history_matches(stack, chain, reference)
    assert_catalogue_matches(stack, chain, reference)


def test_the_replicas_share_the_partitions_and_apply_each_event_once(stack: Stack) -> None:
    """Both replicas of each service share the stream; together they apply each event once, in order."""
    assert stack.config.process_names("grouping") == ["grouping", "grouping-2"]
    ports = {stack.service_process(p).port for p in stack.services}
    assert len(ports) == len(stack.services), "each replica has a port of its own"
    chain = "replicas-share"
    # Rounds in order: bargains' history folds each store's prices in the order they arrive.
    events = price_events(chain, stores=48, skus=40, rounds=3, rng=random.Random(11), shuffle_rounds=False)
    reference = reference_of(events)
    send(stack, events)
    assert wait_until(drained(stack, GROUPS), timeout=180, interval=0.5), lags(stack, GROUPS)
    shares = {p: handled(stack, p) for name in SCALED for p in stack.config.process_names(name)}
    print(f"\nprice events handled per replica ({len(events)} published): {shares}")
    for name in SCALED:
        first, second = stack.config.process_names(name)
        assert shares[first] > 0, f"{name}: its second replica took every partition"
        assert shares[second] > 0, f"{name}: its first replica took every partition"
    assert_all_match(stack, chain, reference)


def test_a_replica_killed_mid_stream_hands_its_partitions_over(stack: Stack) -> None:
    """kill -9 a replica of each service mid-stream: the other takes its partitions, nothing lost or doubled.

    Each store's events are folded by bargains in publish order, so the history equals the
    reference only if a store's events kept their order across the handover.
    """
    chain = "replicas-kill"
    events = price_events(chain, stores=48, skus=50, rounds=8, rng=random.Random(12), shuffle_rounds=False)
    reference = reference_of(events)
    before = {p: handled(stack, p) for p in stack.services}
    # The stream goes on in slices while the replicas are killed, one after another.
    publisher = threading.Thread(target=send_paced, args=(stack, events))
    publisher.start()
    at_kill: dict[str, int] = {}
    try:
        for name in SCALED:
            victim = f"{name}-2"
            assert wait_until(progressed(stack, victim, before[victim]), timeout=120, interval=0.02)
            at_kill[victim] = handled(stack, victim) - before[victim]
            kill_9(stack, victim)
    finally:
        publisher.join()
    started = time.monotonic()
    # The group notices the dead member when its session times out, then rebalances.
    assert wait_until(drained(stack, GROUPS), timeout=240, interval=0.5), lags(stack, GROUPS)
    drain_s = time.monotonic() - started
    taken_over = {name: handled(stack, name) - before[name] for name in SCALED}
    print(
        f"\n{len(events)} events; handled by each replica before its kill, at least: {at_kill}; "
        f"by the others: {taken_over}; drained {drain_s:.1f} s after the last was published"
    )
    assert_all_match(stack, chain, reference)


def progressed(stack: Stack, process: str, since: int) -> Callable[[], bool]:
    """Return a predicate: the process has handled price events beyond `since`."""
    return lambda: handled(stack, process) > since


def send_paced(stack: Stack, events: Sequence[Event], slice_size: int = 16, pause_s: float = 0.1) -> None:
    """Publish events a slice at a time, each acknowledged, with a pause between slices."""
    for start in range(0, len(events), slice_size):
        send(stack, events[start : start + slice_size])
        time.sleep(pause_s)


def kill_9(stack: Stack, process: str) -> None:
    """Kill a service process with SIGKILL and wait until it and its port are gone."""
    managed = stack.services[process]
    pid = managed.pid
    assert pid is not None, f"{process} is not running"
    os.kill(pid, signal.SIGKILL)
    assert wait_until(lambda: not managed.running(), timeout=30)
    port = stack.service_process(process).port
    assert wait_until(lambda: not port_in_use(port), timeout=30), f"{process} still holds port {port}"
