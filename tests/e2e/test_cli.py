"""The operator CLI end to end: up, status, demo, rescrape, logs, counts, topics, reset, up again, down."""

import csv
import json
import os
import queue
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from contracts import SERVICES
from pricestream.config import StackConfig
from pricestream.stack import Stack
from scraper.domain.importers import read_rows
from tests.e2e.cli import CLI, StoryStack, run_cli, up_cli
from testsupport import stack_config, wait_until

pytestmark = pytest.mark.e2e

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "au-grocery-2023"


@pytest.fixture(scope="module")
def config(story_stack: StoryStack) -> StackConfig:
    """Ports and home of the e2e tier's stack, which this module drives through the CLI."""
    return story_stack.config


# Up, then 16 simulated days with a short night after each: the e2e stack's start (tests/e2e/conftest.py).
@pytest.mark.timeout(900)
def test_up_status_and_the_demo_story(story_stack: StoryStack) -> None:
    config, up, status, demo = story_stack.config, story_stack.up, story_stack.status, story_stack.demo
    assert up.returncode == 0, up.stdout + up.stderr
    for name in SERVICES:
        assert f"http://127.0.0.1:{config.service_port(name)}" in up.stdout

    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == 3 + len(SERVICES), "broker, postgres, storefront, services"

    assert demo.returncode == 0, demo.stdout + demo.stderr
    print(demo.stdout)
    assert "example substitutions" in demo.stdout
    assert "where to look next" in demo.stdout
    story = json.loads((config.home / "demo.json").read_text())
    # The story against the storefront's truth: zones, bargains, substitutes, nothing lost.
    assert story["days"] == 16
    # Groups against the zones of the last day, after each chain re-zoned two stores on day 3.
    assert min(story["ari_per_chain"].values()) >= 0.9, story["ari_per_chain"]
    assert "zone changes" in demo.stdout
    moves = story["zone_changes"]
    assert story["zone_moves"] == len(moves) == 2 * 3
    for move in moves:
        assert move["day_moved"] == 3
        # Grouping saw it (its group changed after the move) and placed it with its new zone: at
        # the end most other stores of its group are in that zone on the last day.
        assert (move["noticed_day"] or 0) >= 3, move
        assert move["end_group_zone"] == move["to_zone"], move
    assert story["zone_moves_noticed"] == story["zone_moves_with_new_zone"] == len(moves)
    # The groups followed the moves: they fit the zones of the last day better than those of day 0.
    for chain, ari in story["ari_per_chain"].items():
        assert ari > story["ari_per_chain_first_day_zones"][chain], story
    assert story["prices_held"] < story["prices_answerable"], "member prices were pruned"
    assert story["discount_precision"] >= 0.9
    assert story["discount_recall"] >= 0.8
    assert story["illusory_listed"] == 0
    assert story["illusory_flagged"] >= 0.9 * story["illusory_specials"]
    assert story["substitutes"]["L1"] > 0
    assert story["substitutes"]["L2"] > 0
    assert (story["consumer_lag"], story["dead_letters"]) == (0, 0)
    # The catalogue answered a search, a product across chains, a basket, and the whole export,
    # whose every price a store answered from its own sighting equals its shelf that day.
    catalogue = story["catalogue"]
    assert catalogue["search"]["results"]
    assert len({price["chain"] for price in catalogue["product"]["prices"]}) > 1
    assert catalogue["basket"]["best_split"] is not None
    assert catalogue["export_pages"] >= 1
    assert catalogue["export_prices"] > 0
    assert catalogue["export_mismatches"] == []


def test_publish_of_only_bad_rows_fails_and_says_why(config: StackConfig, tmp_path: Path) -> None:
    """Runs on the story's stack, before it is brought down."""
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sku": "1", "price_cents": -3}\nnot json\n{"price_cents": 100}\n')
    result = run_cli("publish", str(bad), "--chain", "coles", "--store", "1", config=config)
    assert result.returncode == 1
    assert _counts(result.stdout) == {"accepted": 0, "quarantined": 3, "duplicates": 0, "events": 0}
    assert "nothing could be published" in result.stdout
    assert "row 1 quarantined: negative price" in result.stdout
    as_json = run_cli("publish", str(bad), "--chain", "coles", "--store", "1", "--json", config=config)
    assert as_json.returncode == 1
    answer = json.loads(as_json.stdout)
    problems = answer.pop("problems")
    assert answer == {"file": str(bad), "accepted": 0, "quarantined": 3, "duplicates": 0, "events": 0}
    # Each refused row by its place in the file, with the reason the scraper quarantined it for.
    assert [p["row"] for p in problems] == [1, 2, 3]
    assert [p["reason"] for p in problems][0::2] == ["negative price", "missing sku"]
    assert "not JSON" in problems[1]["reason"]


def test_a_manual_rescrape_is_served_and_followed_in_the_scrapers_log(config: StackConfig) -> None:
    """Runs on the story's stack: `rescrape` of an anchor, seen through `logs --follow`; all settles."""
    counts = json.loads(run_cli("counts", "--json", config=config).stdout)
    anchor = next(row for row in counts["stores"] if row["anchor_store_id"] == row["store_id"])
    argv = [CLI, "logs", "scraper", "--follow", "--lines", "1", "--home", str(config.home)]
    follow = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(follow, lines), daemon=True).start()
    try:
        # The last line comes once --follow has found where the log ends: only then is nothing the
        # re-scrape writes missed (on a loaded machine the CLI can start slower than a scrape runs).
        lines.get(timeout=60)
        asked_at = datetime.now(UTC)
        asked = run_cli("rescrape", anchor["chain"], anchor["store_id"], "--json", config=config)
        assert asked.returncode == 0, asked.stderr
        event = json.loads(asked.stdout)["event"]
        assert event["payload"]["reason"] == "manual"
        assert (event["payload"]["chain"], event["payload"]["store_id"]) == (
            anchor["chain"],
            anchor["store_id"],
        )
        # The idle scraper serves it in a run of its own, observed at the wall clock's time: the
        # catalogue then answers the store with prices observed since the request.
        catalogue = f"http://127.0.0.1:{config.service_port('catalogue')}/v1/export/prices"
        since = {
            "chain": anchor["chain"],
            "store": anchor["store_id"],
            "observed_since": asked_at.isoformat(),
        }
        assert wait_until(
            lambda: bool(httpx.get(catalogue, params=since, timeout=30).json()["prices"]), timeout=120
        )
        done = json.loads(_lines_until(lines, '"scrape run done"', timeout=120)[-1])
        assert done["status"] == "finished", "--follow printed the scraper's lines as they came"
    finally:
        follow.send_signal(signal.SIGINT)
        stopped = follow.wait(timeout=20)
    assert stopped == 0, "Ctrl-C ends --follow, and is no failure"

    def settled() -> bool:
        status = json.loads(run_cli("status", "--json", config=config).stdout)
        return all(group["lag"] == 0 for group in status["consumer_groups"])

    assert wait_until(settled, timeout=120), "every consumer took in the re-scraped prices"
    letters = run_cli("dlq", "list", "--json", config=config)
    assert letters.returncode == 0
    assert not any(json.loads(letters.stdout).values()), "no dead letters"


def _pump(process: "subprocess.Popen[str]", lines: "queue.Queue[str]") -> None:
    """Pass a process's lines of output to a queue, as they come."""
    for line in process.stdout or ():
        lines.put(line)


def _lines_until(lines: "queue.Queue[str]", marker: str, *, timeout: float) -> list[str]:
    """Return the lines read up to and with the first one holding `marker`."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or marker not in seen[-1]:
        seen.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
    return seen


def test_counts_answer_each_store_as_the_catalogue_export_does(config: StackConfig) -> None:
    """Runs on the story's stack: each store's fresh prices are answered, a member's through its anchor."""
    result = run_cli("counts", "--json", config=config)
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    print(counts["chains"])
    stores = counts["stores"]
    assert len({row["chain"] for row in stores}) == 3
    assert all(row["answered"] > 0 for row in stores), "every store is answered"
    members = [row for row in stores if row["anchor_store_id"] != row["store_id"]]
    assert members, "the story grouped stores"
    assert all(row["held"] > 0 for row in stores if row not in members), "an anchor holds its prices"
    # A member holds only what it charges apart from its anchor: the rest is its anchor's, kept once.
    assert sum(row["held"] for row in members) * 10 < sum(row["answered"] for row in members)
    catalogue = f"http://127.0.0.1:{config.service_port('catalogue')}"
    for row in (members[0], stores[0]):
        params = {"chain": row["chain"], "store": row["store_id"], "limit": 10_000}
        export = httpx.get(f"{catalogue}/v1/export/prices", params=params, timeout=30).json()
        assert len(export["prices"]) == row["answered"], row
    table = run_cli("counts", config=config)
    assert f"{len(stores) // 3} stores" in table.stdout


def test_lag_publish_topics_up_again_and_down(config: StackConfig) -> None:
    """Runs after the story on the same stack."""
    lag = run_cli("status", config=config)
    assert "consumer groups" in lag.stdout
    rows = [
        [cell.strip() for cell in line.split("│")]
        for line in lag.stdout.splitlines()
        if "prices.scraped" in line
    ]
    assert [row[1] for row in rows] == ["grouping", "bargains", "catalogue"]
    for row in rows:
        assert int(row[3]) > 0, lag.stdout
        assert (row[3], row[5]) == (row[4], "0"), "everything published was consumed and committed"

    coles = SHARED_DATA / "coles.json"
    published = run_cli("publish", str(coles), "--chain", "coles", "--store", "1", config=config)
    assert published.returncode == 0, published.stdout + published.stderr
    counts = _counts(published.stdout)
    print(published.stdout)
    # 8,236 rows, but the scrape saw 1,971 products twice (in two categories): same rows.
    distinct = len({row["sku"] for row in read_rows(coles.name, coles.read_bytes())})
    assert counts == {
        "accepted": distinct,
        "quarantined": 0,
        "duplicates": 8_236 - distinct,
        "events": counts["events"],
    }
    assert distinct > 6_000

    topics = run_cli("topics", config=config)
    assert topics.returncode == 0
    assert "prices.scraped.v1.dlq" in topics.stdout


def test_a_reset_leaves_nothing_the_demo_story_depends_on(config: StackConfig) -> None:
    """What `pricestream demo` first does to a stack that holds data: a second demo tells the same story."""
    stack = Stack(StackConfig.load(config.home, world_stores_per_chain=12, world_products_per_chain=120))
    assert stack.holds_data()
    stack.reset(report=print)
    stack.up(report=print)

    assert not stack.holds_data(), "no message in any topic, no row in any service's table"
    assert httpx.get(f"{stack.storefront_url}/v1/clock", timeout=10).json() == {"day": 0}
    assert httpx.get(f"{stack.service_url('scraper')}/v1/runs", timeout=10).json()["runs"] == []
    assert json.loads(run_cli("counts", "--json", config=config).stdout)["stores"] == []


def test_up_again_and_down(config: StackConfig) -> None:
    """Runs last on the module's stack."""
    again = run_cli("up", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout

    down = run_cli("down", config=config)
    assert down.returncode == 0
    for name in SERVICES:
        log = (config.home / "logs" / f"{name}.log").read_text()
        assert '"event": "service stopped"' in log, f"{name} did not drain on SIGTERM"
    after = run_cli("status", config=config)
    assert after.returncode == 3, "nothing answers: the stack is unreachable"
    assert "DOWN" in after.stdout


def _counts(stdout: str) -> dict[str, int]:
    """Read the count rows (`│ accepted │ 8236 │`) of a summary table."""
    counts = {}
    for line in stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│") if cell.strip()]
        if len(cells) == 2 and cells[0] in ("accepted", "quarantined", "duplicates", "events"):
            counts[cells[0]] = int(cells[1])
    return counts


def test_port_in_use_is_a_clear_error(config: StackConfig, tmp_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        clash = stack_config(tmp_path / ".pricestream")
        result = up_cli(clash, broker_port=port)
        run_cli("down", config=clash)
    assert result.returncode == 2, "a usage error: choose another port"
    assert f"port {port} for the broker is in use" in result.stderr


def test_match_ranks_one_file_in_another_and_scores_gold_pairs(tmp_path: Path) -> None:
    names = ("left.csv", "right.csv", "gold.csv", "out.csv", "acceptable.csv")
    left, right, gold, out, acceptable = (tmp_path / name for name in names)
    left.write_text(
        "chain,sku,name,brand,size,price\n"
        "coles,c1,Full Cream Milk,Dairy Farmers,2L,3.20\n"
        "coles,c2,Free Range Eggs 12 Pack,Coles,700g,5.60\n"
        "coles,c3,Crunchy Peanut Butter,Bega,375g,4.50\n"
        "coles,c3,Crunchy Peanut Butter,Bega,375g,4.50\n"
    )
    right.write_text(
        "chain,sku,name,size,price\n"
        "woolworths,w1,Dairy Farmers Full Cream Milk,2L,3.10\n"
        "woolworths,w2,Woolworths 12 Large Free Range Eggs,0.7,5.20\n"
        "woolworths,w3,Bega Peanut Butter Crunchy,375g,4.60\n"
        "woolworths,w4,Kraft Crunchy Peanut Butter,375g,4.40\n"
        "woolworths,w5,Omo Laundry Liquid,2L,19.00\n"
    )
    gold.write_text("coles_sku,woolworths_sku,level\nc1,w1,L1\nc2,w2,L3\nc3,w3,L1\n")
    acceptable.write_text("coles_sku,woolworths_sku,level\nc3,w4,L3\n")
    argv = [CLI, "match", str(left), str(right), "--gold", str(gold), "--acceptable", str(acceptable)]
    argv += ["--k", "2", "--out", str(out)]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "200"}, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    assert "left.csv: 3 products (1 rows repeated or unreadable)" in result.stdout
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    best = {row["left_sku"]: row for row in rows if row["rank"] == "1"}
    assert (best["c1"]["right_sku"], best["c1"]["level"]) == ("w1", "L1")
    assert best["c3"]["right_sku"] == "w3"
    assert all(row["right_sku"] != "w5" or row["level"] == "L4" for row in rows)
    table = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") > 5}
    assert "1.000" in table["L1"], "both identical pairs ranked first"
    assert "acceptable" in result.stdout, "a second recall@1 counting further acceptable answers"


def test_bench_measures_raw_limits_pipeline_and_latency_on_a_small_plan(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [CLI, "bench", "--stores", "40", "--products", "100", "--zones", "4", "--rate", "1000"]
    argv += ["--seconds", "3", "--out", str(out), "--json"]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"}, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stderr)
    figures = json.loads(out.read_text())
    assert json.loads(result.stdout) == figures, "--json: the figures alone on stdout, the table on stderr"
    assert figures["raw_produce_messages_per_s"] > 0
    assert figures["raw_copy_rows_per_s"] > 0
    assert figures["pipeline_observations"] == 2 * (40 + 30) * 100
    assert figures["pipeline_observations_per_s"] > 0
    # The zones found (4 of 10 stores each: 36 members), placed by bargains and the catalogue; then
    # a round that sees every store again, and a round of every store's prices in the steady state.
    assert figures["groups_members_placed"] == {"grouping": 36, "bargains": 36, "catalogue": 36}
    assert figures["settling_pipeline_observations"] == (40 + 30) * 100
    assert figures["steady_pipeline_observations"] == (40 + 30) * 100
    assert figures["steady_pipeline_observations_per_s"] > 0
    # Every discounted price became a bargain, and its BargainsChanged was seen.
    assert figures["latency_bargain_events_seen"] == figures["latency_events"] == 30
    assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"]
    assert set(figures["peak_rss_mb"]) == set(SERVICES)
    # Where the throughput phase's time went: each pipeline service's CPU and its database sessions'.
    assert figures["latency_cpu_cores"]["bargains"] > 0, "the latency phase's cores too"
    cores = figures["throughput_cpu_cores"]
    for name in ("grouping", "bargains", "catalogue"):
        assert cores[name] > 0, cores
        assert cores[f"{name}_db"] > 0, cores
        assert figures["database_s"][name] > 0, figures["database_s"]
        assert figures["database_top"][name].split("% ", 1)[1], "names its costliest statement"
    assert 0 < cores["machine"] <= (os.cpu_count() or 1) + 0.2
