"""The `pricestream` operator CLI: up, down, status, topics, demo, scrape, publish, match, dlq."""

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from contracts import SERVICES, TOPICS
from pricestream import compose as compose_stack
from pricestream.bench import BenchPlan, bench_table, machine_description, run_bench
from pricestream.config import StackConfig, find_home
from pricestream.dlq import list_dead_letters, replay
from pricestream.kafka import describe_topics
from pricestream.matching_cli import run_match, run_rebuild, scores_table
from pricestream.processes import StackError
from pricestream.report import summary_table
from pricestream.scraping_cli import publish_file, run_live_scrape, run_scrape
from pricestream.stack import Stack
from pricestream.tokens_cli import make_token
from simulator.catalogue_demo import catalogue_figures, catalogue_report
from simulator.report import example_substitutions, story_report
from simulator.samples import publish_samples
from simulator.story import Story, StoryError, day_times, run_story

app = typer.Typer(help="Operate pricestream's local stack.", no_args_is_help=True, add_completion=False)
console = Console()

CATALOGUE_LINKS = ("/v1/search?q=milk", "/v1/export/prices", "/docs")
HomeOption = Annotated[Path | None, typer.Option(help="State folder (default: .pricestream/ in the project)")]


def _stack(home: Path | None, **overrides: object) -> Stack:
    return Stack(StackConfig.load(home or find_home(), **overrides))


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
def status(home: HomeOption = None) -> None:
    """Show each component's health and each consumer group's lag."""
    stack = _stack(home)
    rows = stack.status()
    table = Table(title="components")
    for column in ("component", "address", "health", "detail"):
        table.add_column(column)
    for row in rows:
        health = "[green]healthy[/green]" if row.healthy else "[red]DOWN[/red]"
        table.add_row(row.name, row.address, health, row.detail)
    console.print(table)
    if next(r for r in rows if r.name == "broker").healthy:
        lag = Table(title="consumer groups")
        for column in ("group", "topic", "committed", "end", "lag"):
            lag.add_column(column, justify="right" if column in ("committed", "end", "lag") else "left")
        for group, topic, committed, end, behind in stack.lag():
            lag.add_row(group, topic, str(committed), str(end), str(behind))
        console.print(lag)
    if not all(r.healthy for r in rows):
        raise typer.Exit(1)


@app.command()
def topics(home: HomeOption = None) -> None:
    """List the registry's topics and what the broker holds of them."""
    stack = _stack(home)
    names = [name for spec in TOPICS for name in (spec.name, spec.dlq)]
    try:
        held = {t.name: t for t in asyncio.run(describe_topics(stack.config.bootstrap_servers, names))}
    except Exception:
        held = {}
        console.print("[yellow]broker not reachable: showing the registry only[/yellow]")
    table = Table(title="topics (registry)")
    for column in ("topic", "event", "key", "producers", "consumers", "partitions", "messages"):
        table.add_column(column, no_wrap=column in ("topic", "event"))
    for spec in TOPICS:
        for name in (spec.name, spec.dlq):
            info = held.get(name)
            is_dlq = name == spec.dlq
            table.add_row(
                name,
                "(dead letters)" if is_dlq else f"{spec.event.EVENT_TYPE} v{spec.event.SCHEMA_VERSION}",
                spec.key,
                "" if is_dlq else ", ".join(spec.producers),
                "" if is_dlq else ", ".join(spec.consumers) or "-",
                str(info.partitions) if info else "missing",
                str(info.messages) if info else "-",
            )
    console.print(table)


@app.command()
def demo(
    home: HomeOption = None,
    days: Annotated[int, typer.Option(min=1, help="Simulated days to scrape, one run each")] = 16,
    scrape: Annotated[
        bool, typer.Option(help="Run the simulated world (else: publish sample events)")
    ] = True,
    stores: Annotated[int, typer.Option(help="Sample stores, when --no-scrape")] = 20,
) -> None:
    """Run the simulated world through several days and report what pricestream made of it."""
    stack = _stack(home)
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
) -> None:
    """Run a scrape of the storefront and show its progress (or, with --live, of a real chain's site)."""
    if live:
        if len(chain or []) != 1 or store is None:
            raise typer.BadParameter("--live needs one --chain (coles or woolworths) and a --store")
        run_live_scrape(console, chain=(chain or [""])[0], store=store, site=site, pages=pages, out=out)
        return
    if scope not in ("plan", "all", "rescrape"):
        raise typer.BadParameter("scope must be plan, all or rescrape")
    summary = run_scrape(_stack(home), console, scope=scope, day=day, chains=chain or [], wait=wait)
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
) -> None:
    """Publish a file of price observations through the scraper (validated, bad rows quarantined)."""
    totals = publish_file(
        _stack(home), console, file, chain=chain, store=store, fmt=fmt, batch_size=batch_size
    )
    console.print(summary_table(f"published {file.name}", totals))
    if totals["accepted"] == 0:
        console.print("[red]nothing could be published[/red]")
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
    k: Annotated[int, typer.Option("--k", min=1, help="Cut-off of recall@k")] = 5,
    out: Annotated[Path, typer.Option(help="Where the ranked pairs go (CSV)")] = Path("matches.csv"),
) -> None:
    """Rank, for each product of LEFT, its substitutes in RIGHT (any format the scraper imports)."""
    from substitutions.embeddings import SentenceEncoder

    report = run_match(left, right, out=out, gold=gold, k=k, encoder=SentenceEncoder(), console=console)
    console.print(
        f"{report.candidates} ranked pairs for {report.left} products in {report.seconds:.1f} s -> {out}"
    )
    if report.scores:
        console.print(scores_table(report.scores, k=k, title=f"{left.name} -> {right.name} against {gold}"))


@app.command()
def bench(
    stores: Annotated[int, typer.Option(help="Stores priced (in zones), besides the latency stores")] = 2_000,
    products: Annotated[int, typer.Option(help="Products per store (one event per store and round)")] = 500,
    zones: Annotated[int, typer.Option(help="Pricing zones of those stores")] = 40,
    rate: Annotated[int, typer.Option(help="Observations/s of the latency phase")] = 10_000,
    seconds: Annotated[float, typer.Option(help="Length of the latency phase")] = 20.0,
    price_points: Annotated[
        int, typer.Option(help="Prices a product takes across the latency stores (0: one per store)")
    ] = 5,
    out: Annotated[Path, typer.Option(help="Where the figures go (JSON)")] = Path(
        "bench-results/pipeline.json"
    ),
) -> None:
    """Measure raw broker and PostgreSQL limits next to pricestream's end-to-end rate and latency."""
    plan = BenchPlan(
        stores=stores,
        products=products,
        zones=zones,
        latency_rate=rate,
        latency_seconds=seconds,
        latency_price_points=price_points,
    )
    figures = run_bench(plan, console)
    figures["machine"] = machine_description()
    console.print(bench_table(figures))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
    console.print(f"figures written to {out}")


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
        token = make_token(_stack(home), name)
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
) -> None:
    """Show the newest dead letters of each DLQ with the reason they were rejected."""
    found = asyncio.run(
        list_dead_letters(_stack(home).config.bootstrap_servers, topics=topic or [], limit=limit)
    )
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
    topic: Annotated[str, typer.Argument(help="The topic (or its .dlq) whose dead letters go back")],
    home: HomeOption = None,
) -> None:
    """Send a topic's dead letters back to it, once each, after the consumer was fixed."""
    sent = asyncio.run(replay(_stack(home).config.bootstrap_servers, topic))
    console.print(f"replayed {sent} dead letters to {topic.removesuffix('.dlq')}")


def main() -> None:
    """Run the CLI, printing operator errors without a traceback."""
    try:
        app()
    except (StackError, StoryError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
