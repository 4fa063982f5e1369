"""The operator CLI in process: --json, --version, exit codes, PRICESTREAM_HOME, completion, logs."""

import asyncio
import gc
import itertools
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaConnectionError
from typer.testing import CliRunner, Result

from catalogue.queries import StoreCount
from contracts import SERVICES, TOPICS
from pricestream import cli
from pricestream.config import StackConfig
from pricestream.dlq import DeadLetter
from pricestream.exits import FAILED, INTERRUPTED, OK, UNREACHABLE, USAGE, exit_code
from pricestream.operations import Counts, follow_log, tail_log
from pricestream.processes import StackError, StackUsageError, UnreachableError
from pricestream.stack import Stack
from simulator.story import StoryError

pytestmark = pytest.mark.unit


def _invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli.app, list(args), prog_name="pricestream", env=env)


@pytest.fixture
def down(tmp_path: Path) -> Path:
    """A home whose stack was up once, on ports where nothing listens now."""
    config = StackConfig.on_free_ports(tmp_path / ".pricestream")
    config.save()
    return config.home


def test_version_names_the_package_and_the_contracts() -> None:
    result = _invoke("--version")

    assert result.exit_code == OK
    assert result.stdout.startswith("pricestream 0.")
    assert "contracts " in result.stdout
    assert f"{len(TOPICS)} topics" in result.stdout


@pytest.mark.parametrize("args", [("topics",), ("dlq", "list")])
def test_the_broker_down_leaves_one_error_and_no_unclosed_client_behind(
    args: tuple[str, ...], down: Path, caplog: pytest.LogCaptureFixture
) -> None:
    unclosed: list[dict[str, Any]] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        unclosed.append(context)

    # aiokafka reports a client never stopped to the event loop's handler when it is collected.
    policy = asyncio.get_event_loop_policy()
    original = policy.new_event_loop

    def new_event_loop() -> asyncio.AbstractEventLoop:
        loop = original()
        loop.set_exception_handler(handler)
        return loop

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(policy, "new_event_loop", new_event_loop)
        result = _invoke(*args, "--home", str(down))
        code, stderr = result.exit_code, result.stderr
        # The result holds the error's traceback, and so the client: let both go, then collect.
        del result
        gc.collect()

    assert code == UNREACHABLE
    assert "is the stack up?" in stderr
    assert [c["message"] for c in unclosed] == [], "every client was stopped"
    assert not [r for r in caplog.records if r.name.startswith("aiokafka")], "the CLI says it once"


@pytest.mark.parametrize(
    "args",
    [
        ("no-such-command",),
        ("status", "--no-such-option"),
        ("scrape", "--scope", "everything"),
        ("scrape", "--live", "--chain", "coles", "--store", "1", "--json"),
        ("scrape", "--live", "--chain", "aldi", "--store", "1"),
        ("logs",),
        ("up", "--replicas", "grouping=x"),
    ],
)
def test_usage_errors_exit_2(args: tuple[str, ...], down: Path) -> None:
    assert _invoke(*args, "--home", str(down)).exit_code == USAGE


def test_a_topic_not_in_the_registry_is_a_usage_error(down: Path) -> None:
    result = _invoke("dlq", "replay", "prices.scrapped.v1", "--home", str(down))

    assert result.exit_code == USAGE
    assert "no topic 'prices.scrapped.v1' in the registry" in result.stderr


def test_a_bad_store_id_for_a_rescrape_is_a_usage_error_before_anything_is_asked(down: Path) -> None:
    result = _invoke("rescrape", "Not A Chain", "1", "--home", str(down))

    assert result.exit_code == USAGE
    assert "String should match pattern '^[a-z0-9][a-z0-9-]{0,31}$'" in result.stderr


def test_topics_with_the_broker_down_exit_3_and_still_show_the_registry(down: Path) -> None:
    started = time.monotonic()
    result = _invoke("topics", "--json", "--home", str(down))

    assert result.exit_code == UNREACHABLE
    assert time.monotonic() - started < 10, "a refused connection fails fast"
    document = json.loads(result.stdout)
    assert document["broker_reachable"] is False
    assert {row["topic"] for row in document["topics"]} == {
        name for spec in TOPICS for name in (spec.name, spec.dlq)
    }
    assert all(row["messages"] is None for row in document["topics"])
    assert "is the stack up?" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("dlq", "replay", "prices.scraped.v1"),
        ("dlq", "list", "--json"),
        ("counts", "--json"),
        ("tokens", "create", "someone"),
        ("scrape", "--json"),
        ("rescrape", "coles", "1"),
    ],
)
def test_commands_that_need_the_stack_exit_3_when_it_is_down(args: tuple[str, ...], down: Path) -> None:
    result = _invoke(*args, "--home", str(down))

    assert result.exit_code == UNREACHABLE, result.output
    assert result.stdout == "", "nothing but a JSON document goes to stdout"
    assert "error:" in result.stderr


def test_commands_that_need_the_stack_exit_3_where_none_was_ever_up(tmp_path: Path) -> None:
    result = _invoke("dlq", "replay", "prices.scraped.v1", "--home", str(tmp_path / "nothing"))

    assert result.exit_code == UNREACHABLE
    assert "no stack at" in result.stderr
    assert not (tmp_path / "nothing").exists(), "a failed command leaves nothing behind"


def test_status_of_a_stack_that_is_down_exits_3_with_its_json(down: Path) -> None:
    result = _invoke("status", "--json", "--home", str(down))

    assert result.exit_code == UNREACHABLE
    document = json.loads(result.stdout)
    assert document["healthy"] is False
    assert [c["name"] for c in document["components"]] == ["broker", "postgres", "storefront", *SERVICES]
    assert not any(c["healthy"] for c in document["components"])
    assert document["consumer_groups"] == []


def test_each_error_an_operator_can_act_on_has_its_exit_code() -> None:
    assert exit_code(StackUsageError("port 9092 is in use")) == USAGE
    assert exit_code(UnreachableError("the scraper is not reachable")) == UNREACHABLE
    assert exit_code(KafkaConnectionError("Unable to bootstrap")) == UNREACHABLE
    assert exit_code(httpx.ConnectError("refused")) == UNREACHABLE
    assert exit_code(ConnectionRefusedError(111, "refused")) == UNREACHABLE
    assert exit_code(StackError("the scraper refused the run")) == FAILED
    assert exit_code(StoryError("scrape run failed")) == FAILED
    assert exit_code(KeyError("a bug")) is None, "a bug keeps its traceback"


def test_pricestream_home_is_the_default_home(down: Path) -> None:
    (down / "logs").mkdir()
    (down / "logs" / "grouping.log").write_text("one\ntwo\nthree\n")

    result = _invoke("logs", "grouping", "--lines", "2", env={"PRICESTREAM_HOME": str(down)})

    assert result.exit_code == OK, result.output
    assert result.stdout == "two\nthree\n"


def test_logs_of_an_unknown_component_name_the_known_ones(down: Path) -> None:
    (down / "logs").mkdir()
    (down / "logs" / "grouping.log").write_text("one\n")
    (down / "logs" / "grouping-2.log").write_text("one\n")

    result = _invoke("logs", "groupin", "--home", str(down))

    assert result.exit_code == USAGE
    assert "one of grouping, grouping-2" in result.stderr


def test_logs_where_no_stack_ran_exit_3(tmp_path: Path) -> None:
    assert _invoke("logs", "scraper", "--home", str(tmp_path)).exit_code == UNREACHABLE


def test_following_a_log_yields_each_line_once_it_is_complete(tmp_path: Path) -> None:
    log = tmp_path / "scraper.log"
    log.write_text("old 1\nold 2\n")
    last, offset = tail_log(log, 1)
    assert last == ["old 2"]
    with log.open("a") as handle:
        handle.write("new 1\nnew 2\nhalf a li")

    assert list(itertools.islice(follow_log(log, offset), 2)) == ["new 1", "new 2"]
    with log.open("a") as handle:
        handle.write("ne\n")
    stops = iter([False, False, True])
    assert list(follow_log(log, offset, poll_s=0, stop=lambda: next(stops))) == [
        "new 1",
        "new 2",
        "half a line",
    ]


def test_completion_offers_commands_and_component_names() -> None:
    def complete(words: str) -> list[str]:
        env = {
            "_PRICESTREAM_COMPLETE": "complete_bash",
            "COMP_WORDS": words,
            "COMP_CWORD": str(words.count(" ")),
        }
        return _invoke(env=env).stdout.split()

    assert complete("pricestream dl") == ["dlq"]
    assert complete("pricestream logs subs") == ["substitutions"]
    script = _invoke("--show-completion", "bash")
    assert script.exit_code == OK
    assert "_PRICESTREAM_COMPLETE=complete_bash" in script.stdout


def test_scrape_json_is_the_run_summary_alone_on_stdout(down: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = {"run_id": "r1", "status": "finished", "pages_total": 2, "pages_done": 2, "observations": 9}

    def answer(url: str, **_: Any) -> httpx.Response:
        status = 202 if url.endswith("/v1/runs") else 200
        return httpx.Response(status, json=summary, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "post", answer)
    monkeypatch.setattr(httpx, "get", answer)

    result = _invoke("scrape", "--json", "--home", str(down))

    assert result.exit_code == OK, result.output
    assert json.loads(result.stdout) == summary


def test_a_failed_scrape_run_exits_1_with_its_json(down: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = {"run_id": "r1", "status": "failed", "pages_total": 2, "pages_done": 1, "observations": 0}

    def answer(url: str, **_: Any) -> httpx.Response:
        status = 202 if url.endswith("/v1/runs") else 200
        return httpx.Response(status, json=summary, request=httpx.Request("GET", url))

    monkeypatch.setattr(httpx, "post", answer)
    monkeypatch.setattr(httpx, "get", answer)

    result = _invoke("scrape", "--json", "--no-wait", "--home", str(down))

    assert result.exit_code == FAILED
    assert json.loads(result.stdout)["status"] == "failed"


def test_publish_json_gives_the_totals_and_exits_1_when_nothing_was_accepted(
    down: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"sku": "1", "price_cents": -3}\n')
    problems = [{"row": 1, "reason": "negative price"}]
    totals = {"accepted": 0, "quarantined": 1, "duplicates": 0, "events": 0, "problems": problems}
    monkeypatch.setattr(cli, "publish_file", lambda *args, **kwargs: dict(totals))

    result = _invoke("publish", str(rows), "--json", "--home", str(down))

    assert result.exit_code == FAILED
    assert json.loads(result.stdout) == {"file": str(rows), **totals}
    assert "nothing could be published" in result.stderr


def test_publish_names_the_rows_refused_and_why_and_counts_the_rest(
    down: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"sku": "1", "price_cents": 3}\n')
    problems = [{"row": 2, "reason": "negative price"}, {"row": 5, "reason": "missing sku"}]
    totals = {"accepted": 4, "quarantined": 7, "duplicates": 0, "events": 1, "problems": problems}
    monkeypatch.setattr(cli, "publish_file", lambda *args, **kwargs: dict(totals))

    result = _invoke("publish", str(rows), "--home", str(down))

    assert result.exit_code == 0
    assert "row 2 quarantined: negative price" in result.stdout
    assert "row 5 quarantined: missing sku" in result.stdout
    assert "... and 5 more" in result.stdout


def test_a_file_of_no_known_format_is_a_usage_error_and_nothing_is_sent(
    down: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not prices\n")
    monkeypatch.setattr(cli, "_running_stack", lambda home: None)

    result = _invoke("publish", str(notes), "--home", str(down))

    assert result.exit_code == USAGE
    assert "cannot tell the format of 'notes.txt'" in result.stderr
    assert "Traceback" not in result.output


def test_dlq_list_json_gives_each_letter_with_its_reason(down: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    letter = DeadLetter(
        "prices.scraped.v1.dlq",
        4,
        "prices.scraped.v1[0]@17",
        "grouping",
        "invalid",
        "1",
        "bad",
        12,
        "k",
        None,
    )

    async def found(*args: Any, **kwargs: Any) -> dict[str, list[DeadLetter]]:
        return {"prices.scraped.v1.dlq": [letter], "groups.changed.v1.dlq": []}

    monkeypatch.setattr(cli, "list_dead_letters", found)

    result = _invoke("dlq", "list", "--json", "--home", str(down))

    assert result.exit_code == OK, result.output
    document = json.loads(result.stdout)
    assert document["groups.changed.v1.dlq"] == []
    assert document["prices.scraped.v1.dlq"][0]["reason"] == "invalid"
    assert document["prices.scraped.v1.dlq"][0]["source"] == "prices.scraped.v1[0]@17"


def test_counts_json_gives_each_store_and_each_chains_totals(
    down: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    stores = [StoreCount("coles", "1", "1", 100, 100), StoreCount("coles", "2", "1", 10, 100)]

    def counted(stack: Stack, *, chain: str | None) -> Counts:
        return Counts(fresh_after=since, stores=stores)

    monkeypatch.setattr(cli, "store_counts", counted)

    result = _invoke("counts", "--json", "--home", str(down))

    assert result.exit_code == OK, result.output
    document = json.loads(result.stdout)
    assert document["chains"] == {"coles": {"stores": 2, "held": 110, "answered": 200}}
    assert document["stores"][1] == {
        "chain": "coles",
        "store_id": "2",
        "anchor_store_id": "1",
        "held": 10,
        "answered": 100,
    }
    assert document["answered_observed_since"] == since.isoformat()
    assert "catalogue" in document["source"]


def test_counts_of_a_chain_the_catalogue_does_not_know_is_a_usage_error(
    down: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def counted(stack: Stack, *, chain: str | None) -> Counts:
        return Counts(fresh_after=datetime(2026, 1, 1, tzinfo=UTC), stores=[])

    monkeypatch.setattr(cli, "store_counts", counted)

    result = _invoke("counts", "--chain", "nope", "--home", str(down))

    assert result.exit_code == USAGE
    assert "the catalogue knows no store of chain 'nope'" in result.stderr


def test_bench_json_is_the_figures_alone_on_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = {"raw_produce_messages_per_s": 1000.0, "peak_rss_mb": {"grouping": 80}}
    monkeypatch.setattr(cli, "run_bench", lambda plan, console: dict(figures))
    monkeypatch.setattr(cli, "bench_table", lambda figures: "a table")
    out = tmp_path / "bench.json"

    result = _invoke("bench", "--json", "--out", str(out))

    assert result.exit_code == OK, result.output
    document = json.loads(result.stdout)
    assert document == json.loads(out.read_text())
    assert document["raw_produce_messages_per_s"] == 1000.0
    assert "machine" in document
    assert "<svg" in (tmp_path / "bench.svg").read_text(), "a chart of the figures beside them"


def test_bench_says_after_its_table_which_targets_the_run_met(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    figures = {
        "raw_copy_rows_per_s": 600_000.0,
        "bargains_observations_per_s": 9_000.0,
        "pipeline_observations_per_s": 9_000.0,
        "latency_rate_observations_per_s": 10_000,
        "latency_p99_s": 7.6,
    }
    monkeypatch.setattr(cli, "run_bench", lambda plan, console: dict(figures))

    result = _invoke("bench", "--json", "--out", str(tmp_path / "bench.json"), env={"COLUMNS": "60"})

    assert result.exit_code == OK, result.output
    assert "1.5% of COPY (target 10%): not met" in result.stderr, "one line each, not wrapped"
    assert "not met: bargains carried 9,000 prices/s in the throughput phase" in result.stderr
    assert json.loads(result.stdout)["latency_p99_s"] == 7.6, "the verdicts stay out of the JSON on stdout"


def test_topics_with_the_broker_down_still_show_the_registry_table(down: Path) -> None:
    result = _invoke("topics", "--home", str(down), env={"COLUMNS": "200"})

    assert result.exit_code == UNREACHABLE
    assert "prices.scraped.v1.dlq" in result.stdout
    assert "missing" in result.stdout
    assert "the registry only is shown" in result.stderr


class _StackThatHolds:
    """Records what the demo asks of the stack before its story."""

    def __init__(self, holds: bool) -> None:
        self.holds = holds
        self.calls: list[str] = []
        self.config = StackConfig(home=Path("/nowhere"))

    def up(self, report: Any) -> None:
        self.calls.append("up")

    def service_url(self, name: str) -> str:
        return f"http://{name}.test"

    def holds_data(self) -> bool:
        self.calls.append("holds_data")
        return self.holds

    def reset(self, report: Any) -> None:
        self.calls.append("reset")


@pytest.mark.parametrize(
    ("holds", "args", "calls"),
    [
        (True, (), ["up", "holds_data", "reset", "up"]),
        (False, (), ["up", "holds_data"]),
        (True, ("--no-fresh",), ["up"]),
    ],
)
def test_the_demo_resets_a_stack_that_holds_data_before_its_story(
    holds: bool, args: tuple[str, ...], calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = _StackThatHolds(holds)
    monkeypatch.setattr(cli, "_stack", lambda home: stack)

    def story(*args: Any, **kwargs: Any) -> None:
        raise StoryError("the story stops here")

    monkeypatch.setattr(cli, "run_story", story)

    result = _invoke("demo", *args)

    assert result.exit_code == FAILED
    assert "the story stops here" in result.stderr
    assert stack.calls == calls


def test_an_interrupted_bench_says_so_and_exits_130_without_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(plan: object, console: object) -> dict[str, object]:
        raise KeyboardInterrupt  # as run_bench re-raises Ctrl-C or SIGTERM once its stack is down

    monkeypatch.setattr(cli, "run_bench", interrupted)
    out = tmp_path / "figures.json"
    result = _invoke("bench", "--out", str(out))

    assert result.exit_code == INTERRUPTED
    assert "interrupted: the bench's stack is down" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("option", "value"), [("--stores", "-5"), ("--products", "0"), ("--rate", "0"), ("--price-points", "-1")]
)
def test_a_bench_plan_out_of_range_is_refused_before_any_stack_starts(
    option: str, value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[object] = []

    def run_bench(plan: object, console: object) -> dict[str, object]:
        started.append(plan)
        return {}

    monkeypatch.setattr(cli, "run_bench", run_bench)
    result = _invoke("bench", option, value)

    assert result.exit_code == USAGE
    assert f"Invalid value for '{option}'" in result.stderr
    assert started == [], "no stack was started"


@pytest.mark.parametrize(
    ("name", "content", "says"),
    [
        ("products.csv", "a,b\n1,2\n", "the CSV header names none of the known columns"),
        ("products.json", '{"x": 1}', "no product could be read (1 rows"),
        ("products.jsonl", '{"sku": "1"}\n{"name": "Milk"}\n', "no product could be read (2 rows"),
    ],
)
def test_match_refuses_a_product_file_it_cannot_read_or_that_names_no_product(
    name: str, content: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / name
    bad.write_text(content)
    good = tmp_path / "good.jsonl"
    good.write_text('{"sku": "1", "name": "Milk 1L", "price": 1.5}\n')
    monkeypatch.setattr(cli, "sentence_encoder", lambda: None)

    for left, right in ((bad, good), (good, bad)):
        result = _invoke("match", str(left), str(right), "--out", str(tmp_path / "m.csv"))

        assert result.exit_code == USAGE
        assert f"{bad}: {says}" in " ".join(result.stderr.split())
        assert not (tmp_path / "m.csv").exists()


@pytest.mark.parametrize(
    ("gold", "says"),
    [
        ("left_sku,right_sku,level\n", "no pairs after its header"),
        ("sku,price\n1,2.5\n", "line 2: expected left_sku,right_sku,level"),
    ],
)
def test_match_refuses_a_gold_file_without_pairs_before_matching_anything(
    gold: str, says: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = tmp_path / "gold.csv"
    pairs.write_text(gold)
    products = tmp_path / "products.jsonl"
    products.write_text('{"sku": "1", "name": "Milk 1L", "price": 1.5}\n')
    # The encoder is never asked: the bad file is refused first.
    monkeypatch.setattr(cli, "sentence_encoder", lambda: None)

    result = _invoke(
        "match", str(products), str(products), "--gold", str(pairs), "--out", str(tmp_path / "m.csv")
    )

    assert result.exit_code == USAGE
    assert says in result.stderr
    assert not (tmp_path / "m.csv").exists()
