"""The operator CLI end to end: up, status, demo, topics, up again, port clash, down."""

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import SERVICES
from pricestream.config import StackConfig
from scraper.domain.importers import read_rows
from testsupport import stack_config

pytestmark = pytest.mark.e2e

CLI = str(Path(sys.executable).with_name("pricestream"))
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "au-grocery-2023"


def _run(*args: str, config: StackConfig, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    # A smaller simulated world than the default, so the 16-day story fits the test's time.
    env = {
        **os.environ,
        "COLUMNS": "200",
        "PRICESTREAM_WORLD_STORES_PER_CHAIN": "12",
        "PRICESTREAM_WORLD_PRODUCTS_PER_CHAIN": "120",
    }
    argv = [CLI, *args, "--home", str(config.home)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)


def _up(config: StackConfig, broker_port: int | None = None) -> subprocess.CompletedProcess[str]:
    ports = {
        "--broker-port": broker_port or config.broker_port,
        "--postgres-port": config.postgres_port,
        "--http-port-base": config.http_port_base,
        "--storefront-port": config.storefront_port,
    }
    return _run("up", *(str(part) for pair in ports.items() for part in pair), config=config)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackConfig]:
    """Ports and home of the stack this module drives through the CLI; always brought down."""
    config = stack_config(tmp_path_factory.mktemp("e2e") / ".pricestream")
    yield config
    _run("down", config=config)


# Up, then 16 simulated days with a short night after each (the demo's own limit is 360 s).
@pytest.mark.timeout(480)
def test_up_status_and_the_demo_story(config: StackConfig) -> None:
    up = _up(config)
    assert up.returncode == 0, up.stdout + up.stderr
    for name in SERVICES:
        assert f"http://127.0.0.1:{config.service_port(name)}" in up.stdout

    status = _run("status", config=config)
    assert status.returncode == 0, status.stdout
    assert status.stdout.count("healthy") == 3 + len(SERVICES), "broker, postgres, storefront, services"

    demo = _run("demo", config=config, timeout=360)
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
    result = _run("publish", str(bad), "--chain", "coles", "--store", "1", config=config)
    assert result.returncode == 1
    assert _counts(result.stdout) == {"accepted": 0, "quarantined": 3, "duplicates": 0, "events": 0}
    assert "nothing could be published" in result.stdout


def test_lag_publish_topics_up_again_and_down(config: StackConfig) -> None:
    """Runs after the story on the same stack."""
    lag = _run("status", config=config)
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
    published = _run("publish", str(coles), "--chain", "coles", "--store", "1", config=config)
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

    topics = _run("topics", config=config)
    assert topics.returncode == 0
    assert "prices.scraped.v1.dlq" in topics.stdout

    again = _run("up", config=config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running" in again.stdout

    down = _run("down", config=config)
    assert down.returncode == 0
    for name in SERVICES:
        log = (config.home / "logs" / f"{name}.log").read_text()
        assert '"event": "service stopped"' in log, f"{name} did not drain on SIGTERM"
    after = _run("status", config=config)
    assert after.returncode == 1
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
        result = _up(clash, broker_port=port)
        _run("down", config=clash)
    assert result.returncode == 2
    assert f"port {port} for the broker is in use" in result.stdout


def test_match_ranks_one_file_in_another_and_scores_gold_pairs(tmp_path: Path) -> None:
    left, right, gold, out = (tmp_path / name for name in ("left.csv", "right.csv", "gold.csv", "out.csv"))
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
    argv = [CLI, "match", str(left), str(right), "--gold", str(gold), "--k", "2", "--out", str(out)]
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


def test_bench_measures_raw_limits_pipeline_and_latency_on_a_small_plan(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    argv = [CLI, "bench", "--stores", "40", "--products", "100", "--zones", "4", "--rate", "1000"]
    argv += ["--seconds", "3", "--out", str(out)]
    result = subprocess.run(
        argv, capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"}, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    print(result.stdout)
    figures = json.loads(out.read_text())
    assert figures["raw_produce_messages_per_s"] > 0
    assert figures["raw_copy_rows_per_s"] > 0
    assert figures["pipeline_observations"] == 2 * (40 + 30) * 100
    assert figures["pipeline_observations_per_s"] > 0
    # Every discounted price became a bargain, and its BargainsChanged was seen.
    assert figures["latency_bargain_events_seen"] == figures["latency_events"] == 30
    assert 0 < figures["latency_p50_s"] <= figures["latency_p99_s"]
    assert set(figures["peak_rss_mb"]) == set(SERVICES)
