"""CLI commands that feed prices in: run a scrape, publish a file of observations."""

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pricestream.processes import StackError, StackUsageError, UnreachableError
from pricestream.stack import Stack
from scraper.chains.live import (
    SITES,
    LiveSummary,
    NoNetworkError,
    check_reachable,
    live_adapter,
    live_fetcher,
    scrape_store,
)
from scraper.domain.importers import read_rows
from scraper.fetching import FetchError
from scraper.settings import ScraperSettings


def _scraper_url(stack: Stack) -> str:
    return stack.service_process("scraper").url


def run_scrape(
    stack: Stack, console: Console, *, scope: str, day: int | None, chains: list[str], wait: bool
) -> dict[str, Any]:
    """Start a scrape run and follow its progress until it ends; return its summary."""
    url = _scraper_url(stack)
    if day is not None:
        # Chains served as Coles or Woolworths price the shop's clock, as a real site prices
        # today, and take no day per request: move the simulated shops' clock to that day.
        shop = stack.config.storefront_url
        try:
            httpx.post(f"{shop}/v1/clock", json={"day": day}, timeout=10).raise_for_status()
        except httpx.HTTPError as exc:
            failure = UnreachableError if isinstance(exc, httpx.TransportError) else StackError
            raise failure(f"the simulated storefront at {shop} did not take day {day} ({exc})") from None
    try:
        response = httpx.post(
            f"{url}/v1/runs", json={"scope": scope, "day": day, "chains": chains}, timeout=60
        )
    except httpx.HTTPError as exc:
        raise UnreachableError(
            f"the scraper at {url} is not reachable ({exc}): run `pricestream up`"
        ) from None
    if response.status_code != 202:
        raise StackError(f"the scraper refused the run: {_detail(response)}")
    run_id = response.json()["run_id"]
    summary: dict[str, Any] = httpx.get(f"{url}/v1/runs/{run_id}", timeout=10).json()
    if not wait:
        return summary
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("{task.fields[observations]} prices"), console=console) as progress:
        bar = progress.add_task(f"scraping {run_id}", total=summary["pages_total"], observations=0)
        while summary["status"] == "running":
            time.sleep(0.5)
            summary = httpx.get(f"{url}/v1/runs/{run_id}", timeout=10).json()
            progress.update(bar, completed=summary["pages_done"], observations=summary["observations"])
    return summary


def run_live_scrape(
    console: Console, *, chain: str, store: str, site: str | None, pages: int, out: Path | None
) -> None:
    """Read pages of one store from a real chain's site and show what they hold (StackError when it fails)."""

    if chain not in SITES:
        raise StackUsageError(f"live mode speaks {' or '.join(sorted(SITES))}, not {chain!r}")

    async def scrape() -> LiveSummary:
        fetcher = live_fetcher(ScraperSettings().user_agent)
        try:
            adapter = live_adapter(chain, fetcher, site)
            await check_reachable(fetcher, site or SITES[chain])
            return await scrape_store(adapter, chain, store, max_pages=pages, now=datetime.now(UTC))
        except NoNetworkError as exc:
            raise UnreachableError(str(exc)) from None
        except ValueError as exc:
            raise StackError(str(exc)) from None
        except FetchError as exc:
            raise StackError(f"the {chain} site refused the scrape: {exc}") from None
        finally:
            await fetcher.client.aclose()

    summary = asyncio.run(scrape())
    console.print(
        f"{chain} store {store}: {summary.pages} pages, {len(summary.observations)} prices, "
        f"{sum(summary.quarantined.values())} rows quarantined"
    )
    for reason, count in summary.quarantined.most_common(10):
        console.print(f"  quarantined {count}x: {reason}")
    if out is not None:
        out.write_text("".join(json.dumps(row) + "\n" for row in summary.observations))
        console.print(f"wrote {out}: send it in with `pricestream publish {out}`")


PROBLEMS_SHOWN = 20
"""Rejected rows `publish` names with their reason (the scraper quarantines every one, with its own)."""


def publish_file(
    stack: Stack,
    console: Console,
    path: Path,
    *,
    chain: str | None,
    store: str | None,
    fmt: str | None,
    batch_size: int,
) -> dict[str, Any]:
    """Read a file of observations and send it to the scraper's ingest endpoint in batches.

    Return the counts, and under `problems` the first rejected rows (their place in the file,
    from 1) with the scraper's reason.
    """
    try:
        rows = list(read_rows(path.name, path.read_bytes(), fmt=fmt))
    except (OSError, ValueError) as unreadable:
        # Nothing is sent from a file that cannot be read whole: the operator fixes it and runs again.
        raise StackUsageError(f"{path}: {unreadable}") from None
    # One time for the whole file, so rows it repeats are duplicates across batches too.
    observed_at = datetime.now(UTC).isoformat()
    totals = {"accepted": 0, "quarantined": 0, "duplicates": 0, "events": 0}
    problems: list[dict[str, Any]] = []
    url = f"{_scraper_url(stack)}/v1/observations"
    headers = {"Authorization": f"Bearer {stack.ingest_token}"}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with httpx.Client(timeout=120) as client, Progress(*columns, console=console) as progress:
        bar = progress.add_task(f"publishing {path.name}", total=len(rows))
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            body = {
                "rows": batch,
                "chain": chain,
                "store_id": store,
                "source": "import",
                "observed_at": observed_at,
            }
            try:
                response = client.post(url, json=body, headers=headers)
            except httpx.HTTPError as exc:
                raise UnreachableError(
                    f"the scraper at {url} is not reachable ({exc}): run `pricestream up`"
                ) from None
            if response.status_code != 200:
                raise StackError(f"the scraper refused a batch: {response.status_code} {response.text[:500]}")
            answer = response.json()
            for key in totals:
                totals[key] += int(answer[key])
            problems += [{"row": start + p["row"] + 1, "reason": p["reason"]} for p in answer["problems"]]
            progress.advance(bar, len(batch))
    return {**totals, "problems": problems[:PROBLEMS_SHOWN]}


def _detail(response: httpx.Response) -> str:
    """Return what a service said was wrong: its JSON `detail`, else the status and body."""
    try:
        detail = response.json()["detail"]
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code} {response.text}"
    return detail if isinstance(detail, str) else f"{response.status_code} {detail}"
