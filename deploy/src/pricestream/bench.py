"""`pricestream bench`: raw limits of this machine next to pricestream's end-to-end rate and latency.

On a fresh local stack of its own (free ports, a temporary home):
1. raw limits: aiokafka produce and consume of small messages, produce of the benchmark's
   own PricesScraped events, and PostgreSQL COPY rows/s;
2. throughput from cold: two rounds of prices for every store (a regular price 20 days ago
   and the same price two days ago, so bargains have an established history), published as
   fast as the producer goes, before any group exists; timed until grouping, bargains and the
   catalogue have processed every event (the pipeline's rate is the slowest of the three);
3. groups settled: grouping finds the zones (stores that charge the same) in the fresh round,
   and bargains and the catalogue place each zone's members under its anchor, keeping what
   they share once; timed until both hold every member grouping placed;
4. throughput in the steady state: every store's prices once more (yesterday), timed as in 2:
   a member's prices that its anchor shows too are answered by the anchor, as in a chain
   whose stores mostly price by zone;
5. latency: once every service has drained what the throughput phases left (each consumer
   group's lag 0), fresh discounted prices at a steady rate for stores with that history;
   each one's BargainsChanged is awaited on its topic, giving p50 and p99 from price to bargain;
6. peak resident memory of each service.
"""

import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from rich.console import Console
from rich.table import Table

from contracts import SERVICES, consumed_by, topic
from pricestream.bench_chart import LATENCY_TARGET_S, TARGET_SHARE_OF_COPY
from pricestream.bench_costs import cores_between, cpu_seconds, forget_statements, statement_times
from pricestream.config import StackConfig
from pricestream.kafka import consumer_lag, partitions_of
from pricestream.stack import Stack
from servicekit.metrics import processed_counts

PRICES = topic("prices.scraped.v1")
BARGAINS = topic("bargains.changed.v1")
HEADERS = [("event_type", b"PricesScraped"), ("schema_version", b"1")]
PIPELINE = ("grouping", "bargains", "catalogue")
STEADY = "steady_"
SETTLING = "settling_"
PHASE_NAMES = {"": "from cold", SETTLING: "settling (every store seen again)", STEADY: "steady state"}
"""The prefix of the steady-state phase's figures."""
NO_GROUPS_AFTER_S = 10.0
"""How long the bench waits for a first group after the cold phase before it measures without one."""
"""The services that take every price: each one's rate is measured, the slowest is the pipeline's."""
Report = Callable[[str], None]
EventShape = Literal["columns", "rows"]


@dataclass(frozen=True, slots=True)
class BenchPlan:
    """How big each phase is."""

    stores: int = 2_000
    products: int = 500
    zones: int = 40
    latency_rate: int = 10_000
    latency_seconds: float = 20.0
    # How many prices a product takes across the latency stores: a chain charges a handful
    # (its pricing zones); 0 gives every store a price of its own, the medians' worst case.
    latency_price_points: int = 5
    raw_messages: int = 200_000
    copy_rows: int = 1_000_000
    # Processes per service on the bench's stack (`--replicas`); each one counts its share.
    replicas: dict[str, int] = field(default_factory=dict)
    # How events carry their prices: as columns (what the scraper sends) or one object each.
    events: EventShape = "columns"

    @property
    def latency_stores(self) -> int:
        """Return how many stores the latency phase discounts, one event each."""
        return max(1, round(self.latency_rate * self.latency_seconds / self.products))


@contextlib.contextmanager
def terminated_as_interrupted() -> Iterator[None]:
    """Take SIGTERM as Ctrl-C inside the block: a benchmark stopped by `kill` still brings its stack down."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_bench(plan: BenchPlan, console: Console) -> dict[str, Any]:
    """Bring a stack up in a temporary home, measure every phase, bring it down; return the figures."""
    with terminated_as_interrupted(), tempfile.TemporaryDirectory(prefix="pricestream-bench-") as home:
        stack = Stack(StackConfig.on_free_ports(Path(home) / ".pricestream", plan.replicas))
        try:
            with console.status("starting a stack of its own..."):
                stack.up(report=lambda line: None)
            return asyncio.run(_measure(stack, plan, console))
        finally:
            with console.status("bringing the bench stack down..."):
                stack.down(report=lambda line: None)


async def _measure(stack: Stack, plan: BenchPlan, console: Console) -> dict[str, Any]:
    """Run the phases in order on a running stack."""
    bootstrap = stack.config.bootstrap_servers
    figures: dict[str, Any] = {"plan": asdict(plan)}
    with console.status("raw limits: broker produce and consume..."):
        figures |= await _raw_broker(bootstrap, plan.raw_messages)
    with console.status("raw limits: PostgreSQL COPY..."):
        figures["raw_copy_rows_per_s"] = await _raw_copy(stack, plan.copy_rows)
    cold, settling, steady, latency_stores = _history(plan)
    with console.status("raw limits: producing the benchmark's own events..."):
        figures |= await _raw_events(bootstrap, cold[: len(cold) // 4], plan.products)
    figures |= await _throughput(stack, cold, plan, console)
    figures |= await _drain(stack, console)
    figures |= await _settle_groups(stack, console)
    # A member placed before its anchor's newest prices arrived keeps its copies of them until
    # it is seen again (how many depends on the cold phase's timing): one round sees every store
    # again, so the steady round meets members that hold only what they charge apart.
    figures |= await _throughput(stack, settling, plan, console, phase=SETTLING)
    figures |= await _drain(stack, console, phase=SETTLING)
    figures |= await _throughput(stack, steady, plan, console, phase=STEADY)
    figures |= await _drain(stack, console, phase=STEADY)
    figures |= await _latency(stack, latency_stores, plan, console)
    figures["peak_rss_mb"] = _peak_rss(stack)
    figures["ratios"] = {
        "pipeline_vs_raw_event_produce": _ratio(
            figures["pipeline_observations_per_s"], figures["raw_event_produce_observations_per_s"]
        ),
        "pipeline_vs_raw_copy_rows": _ratio(
            figures["pipeline_observations_per_s"], figures["raw_copy_rows_per_s"]
        ),
        "steady_pipeline_vs_raw_copy_rows": _ratio(
            figures["steady_pipeline_observations_per_s"], figures["raw_copy_rows_per_s"]
        ),
        "grouping_vs_raw_copy_rows": _ratio(
            figures["grouping_observations_per_s"], figures["raw_copy_rows_per_s"]
        ),
        "bargains_vs_raw_copy_rows": _ratio(
            figures["bargains_observations_per_s"], figures["raw_copy_rows_per_s"]
        ),
        "catalogue_vs_raw_copy_rows": _ratio(
            figures["catalogue_observations_per_s"], figures["raw_copy_rows_per_s"]
        ),
    }
    return figures


async def _raw_broker(bootstrap: str, count: int) -> dict[str, Any]:
    """Produce then consume `count` small messages on a topic of their own."""
    name = await scratch_topic(bootstrap, "bench.raw")
    payload = b"x" * 100
    produce_s = await produce(
        bootstrap, name, [(str(i % 64).encode(), payload) for i in range(count)], headers=[]
    )
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=10_000
    )
    try:
        await consumer.start()
        parts = await partitions_of(consumer, name)
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        seen = 0
        started = time.perf_counter()
        while seen < count:
            batch = await consumer.getmany(timeout_ms=1_000, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
        consume_s = time.perf_counter() - started
    finally:
        await consumer.stop()
    return {
        "raw_messages": count,
        "raw_produce_messages_per_s": round(count / produce_s),
        "raw_consume_messages_per_s": round(count / consume_s),
    }


async def _raw_copy(stack: Stack, rows: int) -> int:
    """COPY rows shaped like price observations into a scratch table; return rows/s."""
    conn = await asyncpg.connect(stack.postgres.dsn(database=stack.config.database))
    now = datetime.now(UTC)
    records = [(f"s{i % 2000:05d}", f"p{i % 500}", 100 + i % 2000, now) for i in range(rows)]
    try:
        await conn.execute(
            "CREATE TABLE bench_copy (store_id text, sku text, price_cents integer, observed_at timestamptz)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=records)
        elapsed = time.perf_counter() - started
        await conn.execute("DROP TABLE bench_copy")
    finally:
        await conn.close()
    return round(rows / elapsed)


Records = list[tuple[bytes, bytes]]


def _history(plan: BenchPlan) -> tuple[Records, Records, Records, list[tuple[str, list[int]]]]:
    """Build the cold rounds (20 and 2 days ago), the settling one (yesterday) and the steady one
    (12 hours ago); name the latency stores.

    `bench` stores share their zone's prices (grouping finds the zones); `benchlat` stores
    each have a mix of their own (each product at one of a few price points, so no two stores
    match and grouping leaves them apart) and are discounted later, one event each.
    """
    rng = random.Random(11)
    base = [rng.randint(99, 2999) for _ in range(plan.products)]
    zone_prices = [[round(p * (1 + 0.013 * zone)) for p in base] for zone in range(plan.zones)]
    levels = [0.9 + 0.2 * n / max(1, plan.latency_price_points - 1) for n in range(plan.latency_price_points)]
    latency = [
        (
            f"l{store:05d}",
            [round(p * (rng.choice(levels) if levels else rng.uniform(0.9, 1.1))) for p in base],
        )
        for store in range(plan.latency_stores)
    ]
    stores = [("bench", f"s{store:05d}", zone_prices[store % plan.zones]) for store in range(plan.stores)]
    stores += [("benchlat", store_id, prices) for store_id, prices in latency]
    now = datetime.now(UTC)

    def round_of(days_ago: float) -> Records:
        at = iso_utc(now - timedelta(days=days_ago))
        return [
            price_event(chain, store_id, {f"p{i}": price for i, price in enumerate(prices)}, at, plan.events)
            for chain, store_id, prices in stores
        ]

    return [*round_of(20), *round_of(2)], round_of(1), round_of(0.5), latency


async def _raw_events(bootstrap: str, records: list[tuple[bytes, bytes]], per_event: int) -> dict[str, Any]:
    """Produce the benchmark's own events to a scratch topic: the broker's limit for this traffic."""
    seconds = await produce(bootstrap, await scratch_topic(bootstrap, "bench.events"), records)
    return {
        "raw_event_produce_events_per_s": round(len(records) / seconds),
        "raw_event_produce_observations_per_s": round(len(records) * per_event / seconds),
    }


async def _throughput(
    stack: Stack, records: Records, plan: BenchPlan, console: Console, *, phase: str = ""
) -> dict[str, Any]:
    """Publish every event at once; time until grouping, bargains and catalogue processed them all.

    The cold phase's figures go by their own names; another phase's carry its prefix.
    """
    urls = {
        name: [stack.service_process(process).url for process in stack.config.process_names(name)]
        for name in PIPELINE
    }
    before = {name: _processed(replicas) for name, replicas in urls.items()}
    observations = len(records) * plan.products
    superuser = stack.postgres.dsn(database=stack.config.database)
    await forget_statements(superuser)
    cpu_before = cpu_seconds(stack, PIPELINE)
    started = time.perf_counter()
    produce_s = await produce(stack.config.bootstrap_servers, PRICES.name, records)
    done: dict[str, float] = {}
    backlog_peak = 0
    with console.status(
        f"{PHASE_NAMES[phase]}: grouping, bargains and catalogue process {observations:,} observations..."
    ) as status:
        while len(done) < len(urls):
            await asyncio.sleep(0.5)
            for name, replicas in urls.items():
                processed = _processed(replicas) - before[name]
                backlog_peak = max(backlog_peak, len(records) - processed)
                if processed >= len(records) and name not in done:
                    done[name] = time.perf_counter() - started
            finished = ", ".join(done) or "none"
            status.update(f"{PHASE_NAMES[phase]}: processing {observations:,} observations: {finished} done")
    # Over the very interval between the two readings: a phase of a second or two is short.
    cpu = cores_between(cpu_before, cpu_seconds(stack, PIPELINE), time.perf_counter() - started, PIPELINE)
    figures = {
        "pipeline_events": len(records),
        "pipeline_observations": observations,
        "pipeline_stores": plan.stores + plan.latency_stores,
        "pipeline_produce_s": round(produce_s, 2),
        "grouping_s": round(done["grouping"], 2),
        "bargains_s": round(done["bargains"], 2),
        "catalogue_s": round(done["catalogue"], 2),
        "grouping_observations_per_s": round(observations / done["grouping"]),
        "bargains_observations_per_s": round(observations / done["bargains"]),
        "catalogue_observations_per_s": round(observations / done["catalogue"]),
        "pipeline_observations_per_s": round(observations / max(done.values())),
        "backlog_peak_events": backlog_peak,
        # Where the throughput phase's time went: cores each part used, and the database's work.
        "throughput_cpu_cores": cpu,
        **await statement_times(superuser, PIPELINE),
    }
    return {f"{phase}{key}": value for key, value in figures.items()}


async def _settle_groups(stack: Stack, console: Console, timeout_s: float = 300.0) -> dict[str, Any]:
    """Wait until bargains and the catalogue place every member that grouping placed, and all have drained.

    Grouping regroups a chain once its stores' prices pause, and checks each member against its
    anchor (pruning what they share); bargains and the catalogue keep a member's prices that its
    anchor shows once, with the anchor (the members' copies dropped as they are placed).
    """
    superuser = stack.postgres.dsn(database=stack.config.database)
    started = time.perf_counter()
    placed: dict[str, int] = {}
    with console.status("groups: waiting for the zones to be found and their members placed...") as status:
        while time.perf_counter() - started < timeout_s:
            placed, checks_due = await _members_placed(superuser)
            # A plan whose stores share no zone (or too few products to compare) forms no group:
            # grouping has had its chance once its stores have been quiet a while.
            grouped = placed["grouping"] > 0 or time.perf_counter() - started > NO_GROUPS_AFTER_S
            agreed = len(set(placed.values())) == 1 and not checks_due
            if grouped and agreed and not await _behind(stack):
                break
            status.update(f"groups: members placed {placed}, {checks_due} to check")
            await asyncio.sleep(1.0)
    return {"groups_settle_s": round(time.perf_counter() - started, 1), "groups_members_placed": placed}


async def _members_placed(dsn: str) -> tuple[dict[str, int], int]:
    """Return the members grouping, bargains and the catalogue each hold, and the checks grouping has due."""
    conn = await asyncpg.connect(dsn)
    try:
        placed = {
            "grouping": await conn.fetchval(
                """SELECT count(*) FROM grouping.stores s JOIN grouping.groups g USING (group_id)
                   WHERE g.anchor_store_id <> s.store_id"""
            ),
            **{
                name: await conn.fetchval(
                    f"SELECT count(*) FROM {name}.placements WHERE anchor_store_id <> store_id"
                )
                for name in ("bargains", "catalogue")
            },
        }
        # A member checked against its anchor has had what they share pruned in grouping too.
        due: int = await conn.fetchval("SELECT count(*) FROM grouping.stores WHERE check_due")
        return placed, due
    finally:
        await conn.close()


async def _drain(
    stack: Stack, console: Console, timeout_s: float = 600.0, *, phase: str = ""
) -> dict[str, Any]:
    """Wait until every service's consumer group has caught up on every topic it consumes.

    The throughput phase leaves work behind it (grouping's group changes, bargains' changes
    for the catalogue): a latency measured while services still work through it measures
    that backlog, not the latency at the phase's rate.
    """
    started = time.perf_counter()
    with console.status("waiting for every service to drain its backlog...") as status:
        while True:
            behind = await _behind(stack)
            elapsed = time.perf_counter() - started
            if not behind or elapsed > timeout_s:
                break
            status.update(f"waiting for every service to drain: {behind}")
            await asyncio.sleep(1.0)
    return {f"{phase}drain_s": round(elapsed, 1), f"{phase}drain_left": behind}


async def _behind(stack: Stack) -> dict[str, int]:
    """Return each consumer group's lag on each topic it consumes, where it is behind."""
    groups = {name: [spec.name for spec in consumed_by(name)] for name in SERVICES}
    lags = await consumer_lag(stack.config.bootstrap_servers, groups)
    return {f"{lag.group}/{lag.topic}": lag.lag for lag in lags if lag.lag > 0}


def _processed(urls: list[str]) -> int:
    """Return the price events a service's replicas have handled, together."""
    return sum(processed_counts(url)[PRICES.name] for url in urls)


async def _latency(
    stack: Stack, stores: list[tuple[str, list[int]]], plan: BenchPlan, console: Console
) -> dict[str, Any]:
    """Publish discounted prices at a steady rate; time each until its BargainsChanged arrives."""
    bootstrap = stack.config.bootstrap_servers
    consumer = await _bargains_from_now(bootstrap)
    arrived: dict[str, float] = {}
    all_arrived = asyncio.Event()
    listener = asyncio.create_task(_listen(consumer, arrived, len(stores), all_arrived))
    # What else ran meanwhile (grouping regrouping the zones, say) shows in the phase's cores.
    cpu_before, started = cpu_seconds(stack, PIPELINE), time.perf_counter()
    try:
        with console.status(
            f"latency: {plan.latency_rate:,} observations/s for {plan.latency_seconds:.0f} s..."
        ):
            sent = await _send_discounts(bootstrap, stores, plan)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_arrived.wait(), timeout=60)
    finally:
        listener.cancel()
        await consumer.stop()
    cores = cores_between(cpu_before, cpu_seconds(stack, PIPELINE), time.perf_counter() - started, PIPELINE)
    latencies = sorted(arrived[store] - sent[store] for store in sent if store in arrived)
    return {
        "latency_cpu_cores": cores,
        "latency_rate_observations_per_s": plan.latency_rate,
        "latency_events": len(sent),
        "latency_bargain_events_seen": len(latencies),
        "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p99_s": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 3)
        if latencies
        else None,
    }


async def _bargains_from_now(bootstrap: str) -> AIOKafkaConsumer:
    """Return a started consumer of every bargains partition, positioned at its end."""
    # The local broker holds a fetch for its whole wait even when records have arrived: a short
    # one, so that the listener does not add aiokafka's default half second to the latency.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    try:
        await consumer.start()
        parts = await partitions_of(consumer, BARGAINS.name)
        consumer.assign(parts)
        await consumer.seek_to_end(*parts)
        for part in parts:
            await consumer.position(part)
    except BaseException:
        await consumer.stop()
        raise
    return consumer


async def _listen(
    consumer: AIOKafkaConsumer, arrived: dict[str, float], stores: int, all_arrived: asyncio.Event
) -> None:
    """Note when each latency store's first BargainsChanged arrives; set `all_arrived` once all have."""
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        now = time.perf_counter()
        for records in batch.values():
            for record in records:
                payload = json.loads(record.value)["payload"]
                if payload["chain"] == "benchlat":
                    arrived.setdefault(payload["store_id"], now)
        if len(arrived) >= stores:
            all_arrived.set()


async def _send_discounts(
    bootstrap: str, stores: list[tuple[str, list[int]]], plan: BenchPlan
) -> dict[str, float]:
    """Send each store's prices, a tenth of them 30% off, at the plan's rate; return when each was sent."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    sent: dict[str, float] = {}
    interval = plan.products / plan.latency_rate
    rng = random.Random(5)
    try:
        started = time.perf_counter()
        for number, (store_id, prices) in enumerate(stores):
            await asyncio.sleep(max(0.0, started + number * interval - time.perf_counter()))
            discounted = {
                f"p{i}": round(price * 0.7) if rng.random() < 0.1 else price for i, price in enumerate(prices)
            }
            key, value = price_event(
                "benchlat", store_id, discounted, iso_utc(datetime.now(UTC)), plan.events
            )
            await producer.send_and_wait(PRICES.name, value, key=key, headers=HEADERS)
            sent[store_id] = time.perf_counter()
    finally:
        await producer.stop()
    return sent


async def scratch_topic(bootstrap: str, prefix: str) -> str:
    """Create a topic of the benchmark's own, partitioned like the prices topic; return its name."""
    name = f"{prefix}.{uuid.uuid4().hex[:6]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=PRICES.partitions, replication_factor=1)])
    finally:
        await admin.close()
    return name


async def produce(
    bootstrap: str,
    name: str,
    records: list[tuple[bytes, bytes]],
    *,
    headers: list[tuple[str, bytes]] = HEADERS,
) -> float:
    """Produce records as fast as the producer goes; return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_request_size=4 * 1024 * 1024)
    await producer.start()
    started = time.perf_counter()
    try:
        futures = [await producer.send(name, value, key=key, headers=headers) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.perf_counter() - started


def price_event(
    chain: str, store_id: str, prices: dict[str, int], at: str, shape: EventShape = "columns"
) -> tuple[bytes, bytes]:
    """Write one PricesScraped as JSON directly (model objects would make the producer the bottleneck)."""
    if shape == "columns":
        skus = ",".join(f'"{sku}"' for sku in prices)
        cents = ",".join(str(price) for price in prices.values())
        body = f'"prices":{{"sku":[{skus}],"price_cents":[{cents}],"observed_at":"{at}"}}'
    else:
        observations = ",".join(
            f'{{"sku":"{sku}","price_cents":{price},"observed_at":"{at}"}}' for sku, price in prices.items()
        )
        body = f'"observations":[{observations}]'
    event_id = str(uuid.uuid4())
    value = (
        f'{{"event_id":"{event_id}","event_type":"PricesScraped","schema_version":1,'
        f'"occurred_at":"{iso_utc(datetime.now(UTC))}","producer":"bench","correlation_id":"{event_id}",'
        f'"payload":{{"chain":"{chain}","store_id":"{store_id}","source":"import",{body}}}}}'
    )
    return f"{chain}:{store_id}".encode(), value.encode()


def iso_utc(moment: datetime) -> str:
    """Write a UTC time as the contracts expect it."""
    return moment.isoformat().replace("+00:00", "Z")


def _peak_rss(stack: Stack) -> dict[str, int | None]:
    """Read each service's peak resident memory (VmHWM) in MiB."""
    peaks: dict[str, int | None] = {}
    for name in SERVICES:
        pid = stack.services[name].pid
        peaks[name] = None
        if pid is None:
            continue
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[name] = round(int(line.split()[1]) / 1024)
        except OSError:
            pass
    return peaks


def _ratio(part: float, whole: float) -> float:
    """Return part / whole, rounded."""
    return round(part / whole, 3) if whole else 0.0


def bench_table(figures: dict[str, Any]) -> Table:
    """Show the figures side by side: raw limits, pipeline, latency, memory, ratios."""
    table = Table(title="pricestream bench (this machine)")
    table.add_column("what")
    table.add_column("figure", justify="right")
    for key, value in figures.items():
        if isinstance(value, dict):
            for inner, figure in value.items():
                table.add_row(f"{key}.{inner}", _show(figure))
        else:
            table.add_row(key, _show(value))
    return table


def verdicts(figures: dict[str, Any]) -> list[str]:
    """Say whether this run met each of the bench's targets, and why a latency was missed."""
    lines = [
        line
        for phase, said in (("", "from cold (no groups yet)"), (STEADY, "in the steady state (groups known)"))
        if (line := _throughput_verdict(figures, phase, said))
    ]
    p99, rate = figures.get("latency_p99_s"), figures.get("latency_rate_observations_per_s")
    if p99 is None or not rate:
        return lines
    line = f"latency: p99 {p99:.2f} s at {rate:,} prices/s (target under {LATENCY_TARGET_S:g} s): "
    # The latency phase follows the steady state, when the run measured one.
    slowest = _slowest(figures, STEADY) or _slowest(figures, "")
    if p99 < LATENCY_TARGET_S:
        line += "met"
    elif slowest is not None and slowest[1] < rate:
        # A service slower than the latency phase's rate queues its prices for the whole phase.
        line += (
            f"not met: {slowest[0]} carried {slowest[1]:,.0f} prices/s in the throughput phase, "
            f"less than the {rate:,} the latency phase offers, so its queue grew all through it"
        )
    elif cores := figures.get("latency_cpu_cores"):
        # Every service fast enough: what took the cores meanwhile (a regroup, a vacuum) is the lead.
        busiest = sorted(((used, part) for part, used in cores.items() if part != "machine"), reverse=True)
        named = ", ".join(f"{part} {used:.2f}" for used, part in busiest[:3])
        line += f"not met: the machine used {cores['machine']:.2f} cores through the phase, most by {named}"
    else:
        line += "not met"
    return [*lines, line]


def _throughput_verdict(figures: dict[str, Any], phase: str, said: str) -> str | None:
    """Say whether a throughput phase met the target, and where its time went when it did not."""
    copy_rate, pipeline = (
        figures.get("raw_copy_rows_per_s"),
        figures.get(f"{phase}pipeline_observations_per_s"),
    )
    if not copy_rate or pipeline is None:
        return None
    share = pipeline / copy_rate
    met = "met" if share >= TARGET_SHARE_OF_COPY else "not met"
    return (
        f"throughput {said}: the pipeline carried {pipeline:,.0f} prices/s, {share:.1%} of COPY "
        f"(target {TARGET_SHARE_OF_COPY:.0%}): {met}"
        + (
            _slowest_costs(figures, phase) + _cpu_per_price(figures, phase, copy_rate)
            if met == "not met"
            else ""
        )
    )


def _slowest(figures: dict[str, Any], phase: str) -> tuple[str, float] | None:
    """Return a phase's pipeline service with the lowest throughput and its rate, if the run measured one."""
    rates = [
        (name, figures[key]) for name in PIPELINE if (key := f"{phase}{name}_observations_per_s") in figures
    ]
    return min(rates, key=lambda named: named[1], default=None)


def _slowest_costs(figures: dict[str, Any], phase: str) -> str:
    """Say where the slowest service's time went in a throughput phase, when the run measured it."""
    measured, cores = _slowest(figures, phase), figures.get(f"{phase}throughput_cpu_cores")
    if measured is None or not isinstance(cores, dict):
        return ""
    slowest = measured[0]
    said = (
        f"; the slowest, {slowest}, used {cores.get(slowest, 0):.2f} cores and its database sessions "
        f"{cores.get(f'{slowest}_db', 0):.2f}"
    )
    top = figures.get(f"{phase}database_top", {}).get(slowest)
    return f"{said} (costliest statement: {top})" if top else said


def _cpu_per_price(figures: dict[str, Any], phase: str, copy_rate: float) -> str:
    """Say how much CPU the machine spent per price, against what the target leaves on its cores."""
    cores = figures.get(f"{phase}throughput_cpu_cores")
    pipeline = figures.get(f"{phase}pipeline_observations_per_s")
    machine = figures.get("machine")
    if not isinstance(cores, dict) or "machine" not in cores or not pipeline or not isinstance(machine, dict):
        return ""
    spent = cores["machine"] / pipeline * 1e6
    allowed = machine["cores"] / (TARGET_SHARE_OF_COPY * copy_rate) * 1e6
    return (
        f"; the machine spent {spent:.0f} us of CPU per price, where 10% of COPY on its "
        f"{machine['cores']} cores leaves {allowed:.1f}"
    )


def _show(value: object) -> str:
    """Format a figure for the table."""
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_description() -> dict[str, object]:
    """Describe the machine the figures came from: CPU model, cores, memory."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration):
        memory_kb = 0
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(memory_kb / 1024 / 1024, 1)}
