"""The `pricestream` operator CLI: up, down, status, topics, demo, scrape, publish, match, dlq, logs.

Exit codes (pricestream.exits): 0 ok, 1 a check failed, 2 usage, 3 the stack or a dependency is
unreachable. `--json` commands print one JSON document on stdout and their progress on stderr.
"""

import asyncio
import json
import logging
from dataclasses import asdict
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from contracts import SERVICES, TOPICS
from pricestream import compose as compose_stack
from pricestream.archive_cli import archive_app
from pricestream.bench import BenchPlan, EventShape, bench_table, machine_description, run_bench, verdicts
from pricestream.bench_chart import bench_svg
from pricestream.config import StackConfig, find_home, parse_replicas
from pricestream.dlq import list_dead_letters, replay
from pricestream.exits import INTERRUPTED, UNREACHABLE, ExitCodeGroup, errors, exit_code, unreachable_message
from pricestream.kafka import describe_topics
from pricestream.matching_cli import run_match, run_rebuild, scores_table, sentence_encoder
from pricestream.operations import (
    LOG_NAMES,
    counts_table,
    follow_log,
    log_file,
    request_rescrape,
    store_counts,
    tail_log,
)
from pricestream.processes import StackUsageError, UnreachableError
from pricestream.report import summary_table
from pricestream.scraping_cli import publish_file, run_live_scrape, run_scrape
from pricestream.stack import Stack
from pricestream.tokens_cli import make_token
from pricestream.trace_cli import trace_command
from simulator.catalogue_demo import catalogue_figures, catalogue_report
from simulator.report import example_substitutions, story_report
from simulator.samples import publish_samples
from simulator.story import Story, day_times, run_story

app = typer.Typer(
    help="Operate pricestream's local stack.", no_args_is_help=True, add_completion=True, cls=ExitCodeGroup
)
console = Console()

CATALOGUE_LINKS = ("/v1/search?q=milk", "/v1/export/prices", "/docs")
HomeOption = Annotated[
    Path | None,
    typer.Option(envvar="PRICESTREAM_HOME", help="State folder (default: .pricestream/ in the project)"),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON document on stdout (progress goes to stderr)")
]


def _stack(home: Path | None, **overrides: object) -> Stack:
    return Stack(StackConfig.load(home.resolve() if home else find_home(), **overrides))


def _running_stack(home: Path | None) -> Stack:
    """Return the stack at `home`, which must have been brought up (its ports are saved there)."""
    stack = _stack(home)
    if not stack.config.state_file.exists():
        raise UnreachableError(f"no stack at {stack.config.home}: run `pricestream up` (or give --home)")
    return stack


def _console(json_out: bool) -> Console:
    """Return where progress and tables go: stderr when stdout carries JSON."""
    return errors if json_out else console


def _emit(document: object) -> None:
    """Print one JSON document on stdout."""
    typer.echo(json.dumps(document, indent=2, default=_json_value))


def _json_value(value: object) -> str:
    """Write a time as ISO 8601, anything else JSON does not know as its text."""
    return value.isoformat() if isinstance(value, datetime) else str(value)


def _version(shown: bool) -> None:
    """Print the CLI's version and the contracts' and stop, for `--version`."""
    if shown:
        # The contracts are versioned apart: an event schema changes by a new topic (`.v2`).
        contracts = version("pricestream-contracts")
        typer.echo(f"pricestream {version('pricestream')} (contracts {contracts}, {len(TOPICS)} topics)")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit"),
    ] = False,
) -> None:
    """Operate pricestream's local stack.

    Exit codes: 0 ok, 1 a check failed, 2 usage, 3 the stack or a dependency is unreachable.
    """
    # The Kafka client logs each failed connection itself; the CLI says what failed once, and why.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def _report(line: str) -> None:
    console.print(f"  [green]•[/green] {line}")


@app.command()
def up(
    home: HomeOption = None,
    broker_port: Annotated[int | None, typer.Option(help="Broker port [9092]")] = None,
    postgres_port: Annotated[int | None, typer.Option(help="PostgreSQL port [5433]")] = None,
    http_port_base: Annotated[int | None, typer.Option(help="First service port [8081]")] = None,
    storefront_port: Annotated[int | None, typer.Option(help="Simulated storefront port [8090]")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the simulated world [7]")] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="au-grocery-2023 folder: real product names for the simulated world")
    ] = None,
    dialect: Annotated[
        list[str] | None,
        typer.Option(
            help="A chain's dialect, CHAIN=storefront|coles|woolworths, or auto (the first chain as Coles,"
            " the second as Woolworths) [auto]"
        ),
    ] = None,
    replicas: Annotated[
        list[str] | None, typer.Option(help="SERVICE=N: N processes of a service in one consumer group")
    ] = None,
) -> None:
    """Start the broker, PostgreSQL, the storefront and the five services; wait until all are ready."""
    stack = _stack(
        home,
        broker_port=broker_port,
        postgres_port=postgres_port,
        http_port_base=http_port_base,
        storefront_port=storefront_port,
        storefront_seed=seed,
        catalog=catalog.resolve() if catalog else None,
        storefront_dialects=dialect or None,
        replicas=parse_replicas(replicas),
    )
    console.print(f"[bold]pricestream up[/bold] (state in {stack.config.home})")
    with console.status("bringing the stack up..."):
        launched = stack.up(_report)
    table = Table(title="pricestream is up")
    for column in ("component", "listens on", "more"):
        table.add_column(column)
    table.add_row("broker", stack.config.bootstrap_servers, "Kafka protocol (Tansu)")
    table.add_row("postgres", f"127.0.0.1:{stack.config.postgres_port}", f"database {stack.config.database}")
    table.add_row("storefront", stack.config.storefront_url, "simulated shops (GET /v1/chains)")
    for launch in launched:
        table.add_row(launch.name, launch.url, f"{launch.url}/health/ready  {launch.url}/asyncapi.json")
    console.print(table)


@app.command()
def down(home: HomeOption = None) -> None:
    """Stop the services, the broker and PostgreSQL."""
    _stack(home).down(_report)


@app.command()
def status(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """Show each component's health and each consumer group's lag (exit 1: one is down, 3: all are)."""
    stack = _stack(home)
    rows = stack.status()
    broker_up = next(r for r in rows if r.name == "broker").healthy
    lags = stack.lag() if broker_up else []
    if json_out:
        _emit(
            {
                "healthy": all(r.healthy for r in rows),
                "components": [asdict(row) for row in rows],
                "consumer_groups": [
                    {"group": g, "topic": t, "committed": c, "end": e, "lag": lag} for g, t, c, e, lag in lags
                ],
            }
        )
    else:
        table = Table(title="components")
        for column in ("component", "address", "health", "detail"):
            table.add_column(column)
        for row in rows:
            health = "[green]healthy[/green]" if row.healthy else "[red]DOWN[/red]"
            table.add_row(row.name, row.address, health, row.detail)
        console.print(table)
        if broker_up:
            lag_table = Table(title="consumer groups")
            for column in ("group", "topic", "committed", "end", "lag"):
                lag_table.add_column(
                    column, justify="right" if column in ("committed", "end", "lag") else "left"
                )
            for group, topic, committed, end, behind in lags:
                lag_table.add_row(group, topic, str(committed), str(end), str(behind))
            console.print(lag_table)
    if not any(r.healthy for r in rows):
        errors.print(
            f"[red]nothing answers:[/red] the stack at {stack.config.home} is down (`pricestream up`)"
        )
        raise typer.Exit(UNREACHABLE)
    if not all(r.healthy for r in rows):
        raise typer.Exit(1)


@app.command()
def topics(home: HomeOption = None, json_out: JsonOption = False) -> None:
    """List the registry's topics and what the broker holds of them (exit 3: the broker does not answer)."""
    stack = _stack(home)
    names = [name for spec in TOPICS for name in (spec.name, spec.dlq)]
    failure: Exception | None = None
    try:
        held = {t.name: t for t in asyncio.run(describe_topics(stack.config.bootstrap_servers, names))}
    except Exception as exc:
        if exit_code(exc) != UNREACHABLE:
            raise
        held, failure = {}, exc
    listed: list[dict[str, Any]] = [
        {
            "topic": name,
            "dead_letters_of": spec.name if name == spec.dlq else None,
            "event": spec.event.EVENT_TYPE,
            "schema_version": spec.event.SCHEMA_VERSION,
            "key": spec.key,
            "producers": list(spec.producers),
            "consumers": list(spec.consumers),
            "partitions": held[name].partitions if name in held else None,
            "messages": held[name].messages if name in held else None,
        }
        for spec in TOPICS
        for name in (spec.name, spec.dlq)
    ]
    if json_out:
        _emit({"broker_reachable": failure is None, "topics": listed})
    else:
        table = Table(title="topics (registry)")
        for column in ("topic", "event", "key", "producers", "consumers", "partitions", "messages"):
            table.add_column(column, no_wrap=column in ("topic", "event"))
        for row in listed:
            is_dlq = row["dead_letters_of"] is not None
            table.add_row(
                str(row["topic"]),
                "(dead letters)" if is_dlq else f"{row['event']} v{row['schema_version']}",
                str(row["key"]),
                "" if is_dlq else ", ".join(row["producers"]),
                "" if is_dlq else ", ".join(row["consumers"]) or "-",
                "missing" if row["partitions"] is None else str(row["partitions"]),
                "-" if row["messages"] is None else str(row["messages"]),
            )
        console.print(table)
    if failure is not None:
        errors.print(f"[red]error:[/red] {escape(unreachable_message(failure))} (the registry only is shown)")
        raise typer.Exit(UNREACHABLE)


@app.command()
def demo(
    home: HomeOption = None,
    days: Annotated[int, typer.Option(min=1, help="Simulated days to scrape, one run each")] = 16,
    scrape: Annotated[
        bool, typer.Option(help="Run the simulated world (else: publish sample events)")
    ] = True,
    stores: Annotated[int, typer.Option(help="Sample stores, when --no-scrape")] = 20,
    fresh: Annotated[
        bool, typer.Option(help="Reset a stack that holds data first, so every run tells the same story")
    ] = True,
) -> None:
    """Run the simulated world through several days and report what pricestream made of it.

    The story starts from nothing: the stack is brought up if it is not, and one that holds
    anything (messages in its topics, rows in the services' tables) is reset first.
    """
    stack = _stack(home)
    with console.status("bringing the stack up..."):
        stack.up(lambda line: None)
        if fresh and stack.holds_data():
            _report("the stack holds data of earlier runs: resetting it (topics, schemas, storefront)")
            stack.reset(_report)
            stack.up(lambda line: None)
    _report(f"a fresh stack is up (state in {stack.config.home})")
    urls = {name: stack.service_url(name) for name in SERVICES}
    if not scrape:
        _sample_demo(stack, urls, stores)
        return
    figures = run_story(stack, console, Story(days=days))
    console.print(story_report(figures))
    console.print(example_substitutions(stack.config.storefront_url, urls["substitutions"]))
    catalogue = catalogue_figures(stack, day_times(days))
    console.print(catalogue_report(catalogue))
    figures["catalogue"] = catalogue
    out = stack.config.home / "demo.json"
    out.write_text(json.dumps(figures, indent=2, default=str))
    look = Table(title="where to look next")
    look.add_column("what")
    look.add_column("where", overflow="fold")
    look.add_row("the web page: search, products, basket, groups, pipeline", f"{urls['catalogue']}/")
    look.add_row("health of everything, consumer lag", "pricestream status")
    look.add_row("topics and messages held", "pricestream topics")
    look.add_row("store groups", f"{urls['grouping']}/v1/groups  {urls['grouping']}/v1/stats")
    look.add_row(
        "bargains, illusory flags",
        f"{urls['bargains']}/v1/bargains  {urls['bargains']}/v1/flags?kind=illusory",
    )
    look.add_row(
        "search, products, baskets, export",
        "  ".join(f"{urls['catalogue']}{path}" for path in CATALOGUE_LINKS),
    )
    look.add_row(
        "a product's substitutes", f"{urls['substitutions']}/v1/products/{{chain}}/{{sku}}/substitutions"
    )
    look.add_row("event contracts (AsyncAPI)", "  ".join(f"{url}/asyncapi.json" for url in urls.values()))
    look.add_row("these figures as JSON", str(out))
    console.print(look)
    if figures["consumer_lag"] or figures["dead_letters"]:
        console.print("[red]some events were not processed[/red]")
        raise typer.Exit(1)
    if catalogue["export_mismatches"]:
        console.print("[red]the catalogue answered prices that differ from the storefront's[/red]")
        raise typer.Exit(1)


def _sample_demo(stack: Stack, urls: dict[str, str], stores: int) -> None:
    """Publish the sample world's events and show every service processed its share."""
    rows = publish_samples(stack.config.bootstrap_servers, urls, stores=stores)
    table = Table(title="events published and processed by each service")
    for column in ("service", "topic", "published", "processed"):
        table.add_column(column, justify="right" if column in ("published", "processed") else "left")
    for service, topic, published, processed in rows:
        colour = "green" if processed >= published else "red"
        table.add_row(service, topic, str(published), f"[{colour}]{processed}[/{colour}]")
    console.print(table)
    console.print("Next: `pricestream status`, `pricestream topics`, and each service's /asyncapi.json")
    if any(processed < published for _, _, published, processed in rows):
        console.print("[red]some events were not processed in time[/red]")
        raise typer.Exit(1)


@app.command()
def scrape(
    home: HomeOption = None,
    scope: Annotated[
        str, typer.Option(help="plan (anchors, new stores, samples), all, or rescrape")
    ] = "plan",
    day: Annotated[int | None, typer.Option(help="Storefront day to scrape (default: its clock)")] = None,
    chain: Annotated[list[str] | None, typer.Option(help="Only these chains (repeat the option)")] = None,
    wait: Annotated[bool, typer.Option(help="Follow the run until it ends")] = True,
    live: Annotated[
        bool, typer.Option(help="Read one store of a real chain's own site now, without the stack")
    ] = False,
    store: Annotated[str | None, typer.Option(help="With --live: the store to price pages for")] = None,
    site: Annotated[
        str | None, typer.Option(help="With --live: the site (default: the chain's real one)")
    ] = None,
    pages: Annotated[int, typer.Option(min=1, help="With --live: category pages to read at most")] = 5,
    out: Annotated[
        Path | None, typer.Option(help="With --live: write the observations here (JSON lines)")
    ] = None,
    json_out: JsonOption = False,
) -> None:
    """Run a scrape of the storefront and show its progress (or, with --live, of a real chain's site)."""
    if live:
        if len(chain or []) != 1 or store is None:
            raise typer.BadParameter("--live needs one --chain (coles or woolworths) and a --store")
        if json_out:
            raise typer.BadParameter("--json is for runs of the stack; --live writes its rows with --out")
        run_live_scrape(console, chain=(chain or [""])[0], store=store, site=site, pages=pages, out=out)
        return
    if scope not in ("plan", "all", "rescrape"):
        raise typer.BadParameter("scope must be plan, all or rescrape")
    shown = _console(json_out)
    summary = run_scrape(_running_stack(home), shown, scope=scope, day=day, chains=chain or [], wait=wait)
    if json_out:
        _emit(summary)
    else:
        console.print(summary_table(f"scrape run {summary['run_id']}", summary))
    if summary["status"] == "failed":
        raise typer.Exit(1)


@app.command()
def publish(
    file: Annotated[
        Path,
        typer.Argument(exists=True, dir_okay=False, help="JSON lines, CSV, Grocermatic or heissepreise JSON"),
    ],
    home: HomeOption = None,
    chain: Annotated[str | None, typer.Option(help="Chain of rows that do not name one")] = None,
    store: Annotated[str | None, typer.Option(help="Store of rows that do not name one")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="jsonl, csv, grocermatic, heissepreise")] = None,
    batch_size: Annotated[int, typer.Option(help="Rows per request")] = 2000,
    json_out: JsonOption = False,
) -> None:
    """Publish a file of price observations through the scraper (validated, bad rows quarantined)."""
    stack = _running_stack(home)
    totals = publish_file(
        stack, _console(json_out), file, chain=chain, store=store, fmt=fmt, batch_size=batch_size
    )
    if json_out:
        _emit({"file": str(file), **totals})
    else:
        counts = {key: value for key, value in totals.items() if key != "problems"}
        console.print(summary_table(f"published {file.name}", counts))
        for problem in totals["problems"]:
            console.print(f"  row {problem['row']} quarantined: {problem['reason']}")
        if totals["quarantined"] > len(totals["problems"]):
            more = totals["quarantined"] - len(totals["problems"])
            console.print(f"  ... and {more} more, each in the scraper's quarantine table with its reason")
    if totals["accepted"] == 0:
        _console(json_out).print("[red]nothing could be published[/red]")
        raise typer.Exit(1)


@app.command()
def compose(
    check: Annotated[bool, typer.Option(help="Only tell whether docker-compose.yml is current")] = False,
) -> None:
    """Write docker-compose.yml from the definitions `pricestream up` uses."""
    compose_stack.main(["render", "--check"] if check else ["render"])


@app.command()
def match(
    left: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Products to find substitutes for")
    ],
    right: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Products to look among")],
    gold: Annotated[
        Path | None, typer.Option(exists=True, dir_okay=False, help="CSV: left_sku,right_sku,level")
    ] = None,
    acceptable: Annotated[
        Path | None,
        typer.Option(
            exists=True, dir_okay=False, help="CSV of further answers as good as the gold's: any acceptable@1"
        ),
    ] = None,
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of recall@k")] = 5,
    out: Annotated[Path, typer.Option(help="Where the ranked pairs go (CSV)")] = Path("matches.csv"),
) -> None:
    """Rank, for each product of LEFT, its substitutes in RIGHT (any format the scraper imports)."""
    encoder = sentence_encoder()
    report = run_match(
        left, right, out=out, gold=gold, acceptable=acceptable, k=k, encoder=encoder, console=console
    )
    console.print(
        f"{report.candidates} ranked pairs for {report.left} products in {report.seconds:.1f} s -> {out}"
    )
    if report.scores:
        console.print(scores_table(report.scores, k=k, title=f"{left.name} -> {right.name} against {gold}"))


@app.command()
def bench(
    stores: Annotated[
        int, typer.Option(min=1, help="Stores priced (in zones), besides the latency stores")
    ] = 2_000,
    products: Annotated[
        int, typer.Option(min=1, help="Products per store (one event per store and round)")
    ] = 500,
    zones: Annotated[int, typer.Option(min=1, help="Pricing zones of those stores")] = 40,
    rate: Annotated[int, typer.Option(min=1, help="Observations/s of the latency phase")] = 10_000,
    seconds: Annotated[float, typer.Option(min=0.1, help="Length of the latency phase")] = 20.0,
    price_points: Annotated[
        int, typer.Option(min=0, help="Prices a product takes across the latency stores (0: one per store)")
    ] = 5,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON; a chart beside it, .svg)")] = Path(
        "bench-results/pipeline.json"
    ),
    json_out: JsonOption = False,
    replicas: Annotated[list[str] | None, typer.Option(help="SERVICE=N: N processes of a service")] = None,
    events: Annotated[
        EventShape, typer.Option(help="How events carry prices: columns (as the scraper sends) or rows")
    ] = "columns",
) -> None:
    """Measure raw broker and PostgreSQL limits next to pricestream's end-to-end rate and latency."""
    plan = BenchPlan(
        replicas=parse_replicas(replicas) or {},
        events=events,
        stores=stores,
        products=products,
        zones=zones,
        latency_rate=rate,
        latency_seconds=seconds,
        latency_price_points=price_points,
    )
    shown = _console(json_out)
    try:
        figures = run_bench(plan, shown)
    except KeyboardInterrupt:
        # Ctrl-C or SIGTERM: run_bench brought its stack down on the way out.
        errors.print("interrupted: the bench's stack is down; no figures written")
        raise typer.Exit(INTERRUPTED) from None
    figures["machine"] = machine_description()
    shown.print(bench_table(figures))
    for verdict in verdicts(figures):
        shown.print(verdict, soft_wrap=True)  # one line each, whatever the width: easy to grep
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    chart = out.with_suffix(".svg")
    chart.write_text(bench_svg(figures))
    shown.print(f"figures written to {out}, a chart of them to {chart}")
    if json_out:
        _emit(figures)


substitutions_app = typer.Typer(help="The substitutions service.", no_args_is_help=True)
app.add_typer(substitutions_app, name="substitutions")


@substitutions_app.command("rebuild")
def substitutions_rebuild(
    home: HomeOption = None,
    wait: Annotated[bool, typer.Option(help="Follow the rebuild until it ends")] = True,
) -> None:
    """Recompute every product's substitutes, showing progress; publish the lists that changed."""
    status = run_rebuild(_stack(home), console, wait=wait)
    console.print(summary_table("substitutions rebuild", status))
    if status["status"] == "failed":
        raise typer.Exit(1)


tokens_app = typer.Typer(help="API tokens of the catalogue: a client with one gets a higher rate limit.")
app.add_typer(tokens_app, name="tokens")


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="Who the token is for (letters, digits, _ . -)")],
    home: HomeOption = None,
) -> None:
    """Create a Bearer token for NAME and print it (only its hash is kept); again for NAME replaces it."""
    try:
        token = make_token(_running_stack(home), name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    console.print(token, soft_wrap=True, highlight=False)


dlq_app = typer.Typer(
    help="Dead-letter topics: what was rejected, and replay after a fix.", no_args_is_help=True
)
app.add_typer(dlq_app, name="dlq")


@dlq_app.command("list")
def dlq_list(
    home: HomeOption = None,
    topic: Annotated[list[str] | None, typer.Option(help="Only this topic's DLQ (repeat the option)")] = None,
    limit: Annotated[int, typer.Option(help="Newest letters per DLQ")] = 20,
    json_out: JsonOption = False,
) -> None:
    """Show the newest dead letters of each DLQ with the reason they were rejected."""
    for name in topic or []:
        _registry_topic(name)
    found = asyncio.run(
        list_dead_letters(_running_stack(home).config.bootstrap_servers, topics=topic or [], limit=limit)
    )
    if json_out:
        _emit({dlq: [asdict(letter) for letter in letters] for dlq, letters in found.items()})
        return
    for dlq, letters in found.items():
        if not letters:
            continue
        table = Table(title=f"{dlq} ({len(letters)} newest)")
        for column in ("offset", "from", "group", "reason", "tries", "bytes", "error"):
            table.add_column(column, overflow="fold")
        for letter in letters:
            table.add_row(
                str(letter.offset),
                letter.source,
                letter.consumer_group,
                letter.reason,
                letter.attempts,
                str(letter.size),
                letter.error[:200],
            )
        console.print(table)
    if not any(found.values()):
        console.print("no dead letters")


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[
        str,
        typer.Argument(
            autocompletion=lambda: [spec.name for spec in TOPICS],
            help="The topic (or its .dlq) whose dead letters go back",
        ),
    ],
    home: HomeOption = None,
) -> None:
    """Send a topic's dead letters back to it, once each, after the consumer was fixed."""
    _registry_topic(topic)
    sent = asyncio.run(replay(_running_stack(home).config.bootstrap_servers, topic))
    console.print(f"replayed {sent} dead letters to {topic.removesuffix('.dlq')}")


def _registry_topic(name: str) -> None:
    """Refuse a topic the registry does not have (a usage error, exit 2)."""
    known = [n for spec in TOPICS for n in (spec.name, spec.dlq)]
    if name not in known:
        raise StackUsageError(f"no topic {name!r} in the registry: one of {', '.join(known)}")


@app.command()
def logs(
    name: Annotated[
        str,
        typer.Argument(
            metavar="SERVICE",
            autocompletion=lambda: list(LOG_NAMES),
            help=f"One of {', '.join(LOG_NAMES)} (a replica: grouping-2)",
        ),
    ],
    home: HomeOption = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing lines as they come")] = False,
    lines: Annotated[int, typer.Option("--lines", "-n", min=0, help="Last lines to print first")] = 50,
) -> None:
    """Print a component's log from the stack's home (services log one JSON object a line)."""
    path = log_file(_stack(home), name)
    last, offset = tail_log(path, lines)
    for line in last:
        typer.echo(line)
    if not follow:
        return
    try:
        for line in follow_log(path, offset):
            typer.echo(line)
    except KeyboardInterrupt:
        # Ctrl-C is how one stops following: not a failure.
        return


@app.command()
def rescrape(
    chain: Annotated[str, typer.Argument(help="The store's chain, as the scraper names it")],
    store: Annotated[str, typer.Argument(help="The store's id within its chain")],
    home: HomeOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ask for a store to be scraped again soon: a manual re-scrape request, like grouping's."""
    event = request_rescrape(_running_stack(home), chain, store)
    topic_name = "rescrapes.requested.v1"
    if json_out:
        _emit({"topic": topic_name, "event": event.model_dump(mode="json")})
    else:
        console.print(
            f"asked for a re-scrape of {chain} store {store} (event {event.event_id} on {topic_name}):"
            " the scraper serves it in its next run, or in a run of its own when idle"
        )


@app.command()
def counts(
    home: HomeOption = None,
    chain: Annotated[str | None, typer.Option(help="Only this chain")] = None,
    json_out: JsonOption = False,
) -> None:
    """Count prices held and answered per chain and store (read from the catalogue's database)."""
    found = store_counts(_running_stack(home), chain=chain)
    if chain is not None and not found.stores:
        # An empty table would read as a chain with no prices: say that none such is known.
        raise StackUsageError(f"the catalogue knows no store of chain {chain!r}")
    if json_out:
        _emit(
            {
                "source": "catalogue database (its read queries)",
                "answered_observed_since": found.fresh_after,
                "chains": found.per_chain(),
                "stores": [asdict(row) for row in found.stores],
            }
        )
    else:
        console.print(counts_table(found))


app.command("trace")(trace_command)
app.add_typer(archive_app, name="archive")


def main() -> None:
    """Run the CLI; its command group maps operator errors to exit codes (pricestream.exits)."""
    app()
