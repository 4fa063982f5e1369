"""CLI work for substitutions: offline matching of two files, and a service rebuild with progress.

Matching needs the substitutions package and its machine-learning stack (`pricestream[match]`),
which the slim image leaves out: it is imported when a match runs, never with the CLI.
"""

import csv
import importlib.util
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pricestream.processes import StackError, StackUsageError, UnreachableError
from pricestream.stack import Stack
from scraper.domain.importers import read_rows

if TYPE_CHECKING:
    from substitutions.domain.catalogue import Description
    from substitutions.domain.evaluation import LevelScore
    from substitutions.domain.matching import Policy
    from substitutions.embeddings import Encoder
    from substitutions.offline import Candidate

MATCH_EXTRA_MISSING = (
    "`pricestream match` needs the substitutions package and its machine-learning stack, not installed"
    " here: `pip install 'pricestream[match]'`, or run it in the full image (docs/docker.md)"
)

_COLUMNS = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())


@dataclass(frozen=True, slots=True)
class MatchReport:
    """What a `pricestream match` run found and how long it took."""

    left: int
    right: int
    candidates: int
    seconds: float
    scores: "list[LevelScore]"


def run_match(
    left_path: Path,
    right_path: Path,
    *,
    out: Path,
    gold: Path | None,
    k: int,
    encoder: "Encoder",
    acceptable: Path | None = None,
    console: Console,
    policy: "Policy | None" = None,
) -> MatchReport:
    """Rank the right file's products for each product of the left file; write them, score them on gold.

    `acceptable`: further answers as good as the gold's, for a second recall@1 (any acceptable).
    """
    _require_substitutions()
    from substitutions.domain.evaluation import evaluate
    from substitutions.domain.matching import Policy
    from substitutions.offline import match_lists, ranked_by_left, read_gold

    # The labelled pairs are read first: a bad file is refused before minutes of matching.
    try:
        pairs = read_gold(gold) if gold is not None else None
        further = read_gold(acceptable) if acceptable is not None else None
    except ValueError as exc:
        raise StackUsageError(str(exc)) from None
    left, skipped_left = _read_products(left_path)
    right, skipped_right = _read_products(right_path)
    if {d.chain for d in left} & {d.chain for d in right}:
        right, _ = _read_products(right_path, chain=f"{right[0].chain}-right")
    console.print(
        f"{left_path.name}: {len(left)} products ({skipped_left} rows repeated or unreadable); "
        f"{right_path.name}: {len(right)} products ({skipped_right} rows repeated or unreadable)"
    )
    started = time.perf_counter()
    with Progress(*_COLUMNS, console=console) as progress:
        bars: dict[str, Any] = {}

        def report(phase: str, done: int, total: int) -> None:
            if phase not in bars:
                bars[phase] = progress.add_task(phase, total=total)
            progress.update(bars[phase], completed=done)

        candidates = match_lists(left, right, encoder=encoder, policy=policy or Policy(), progress=report)
    seconds = time.perf_counter() - started
    _write(out, candidates)
    ranked = ranked_by_left(candidates)
    scores = evaluate(pairs, ranked, k=k, acceptable=further) if pairs is not None else []
    return MatchReport(len(left), len(right), len(candidates), seconds, scores)


def _read_products(path: Path, *, chain: str | None = None) -> "tuple[list[Description], int]":
    """Read a product file, refusing one that cannot be read or names no product: nothing to match."""
    from substitutions.offline import read_products

    try:
        products, skipped = read_products(path, read_rows, chain=chain)
    except ValueError as exc:
        raise StackUsageError(f"{path}: {exc}") from None
    if not products:
        raise StackUsageError(
            f"{path}: no product could be read ({skipped} rows without a sku and a name, or unreadable)"
        )
    return products, skipped


def sentence_encoder() -> "Encoder":
    """Return the sentence-transformers encoder the substitutions service uses."""
    _require_substitutions()
    from substitutions.embeddings import SentenceEncoder

    return SentenceEncoder()


def _require_substitutions() -> None:
    """Fail with the way out when the substitutions package (`pricestream[match]`) is not installed."""
    if importlib.util.find_spec("substitutions") is None:
        raise StackError(MATCH_EXTRA_MISSING)


def scores_table(scores: "list[LevelScore]", *, k: int, title: str) -> Table:
    """Show precision, recall@1, recall@k, MRR and the share never offered per gold level."""
    table = Table(title=title)
    further = any(score.acceptable_at_1 is not None for score in scores)
    columns = ["level", "pairs", "precision", "recall@1", f"recall@{k}", "MRR", "never offered"]
    for column in columns + (["any acceptable@1"] if further else []):
        table.add_column(column, justify="right")
    for score in scores:
        cells = [
            score.level,
            str(score.pairs),
            f"{score.precision:.3f}",
            f"{score.recall_at_1:.3f}",
            f"{score.recall_at_k:.3f}",
            f"{score.mrr:.3f}",
            f"{score.never_offered:.3f}",
        ]
        if further:
            cells.append("-" if score.acceptable_at_1 is None else f"{score.acceptable_at_1:.3f}")
        table.add_row(*cells)
    return table


def run_rebuild(stack: Stack, console: Console, *, wait: bool = True) -> dict[str, Any]:
    """Ask the substitutions service to recompute everything and follow its progress."""
    url = stack.service_process("substitutions").url
    try:
        response = httpx.post(f"{url}/v1/rebuilds", timeout=30)
    except httpx.HTTPError as exc:
        raise UnreachableError(
            f"substitutions at {url} is not reachable ({exc}): run `pricestream up`"
        ) from None
    if response.status_code != 202:
        raise StackError(f"substitutions refused the rebuild: {response.status_code} {response.text}")
    status: dict[str, Any] = httpx.get(f"{url}/v1/rebuilds/latest", timeout=10).json()
    if not wait:
        return status
    with Progress(*_COLUMNS, console=console) as progress:
        bars: dict[str, Any] = {}
        while status["status"] in ("running", "idle"):
            phase = status["phase"] or "starting"
            if phase not in bars:
                bars[phase] = progress.add_task(phase, total=status["total"] or None)
            progress.update(bars[phase], completed=status["done"], total=status["total"] or None)
            time.sleep(0.3)
            status = httpx.get(f"{url}/v1/rebuilds/latest", timeout=10).json()
    return status


def _write(path: Path, candidates: "list[Candidate]") -> None:
    """Write the ranked pairs as CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(_HEADER)
        writer.writerows(_rows(candidates))


_HEADER = (
    "left_chain",
    "left_sku",
    "left_name",
    "rank",
    "level",
    "score",
    "right_chain",
    "right_sku",
    "right_name",
    "reason",
)


def _rows(candidates: "list[Candidate]") -> Iterator[tuple[object, ...]]:
    """Flatten candidates into output rows."""
    for c in candidates:
        yield (
            c.left.chain,
            c.left.sku,
            c.left.name,
            c.rank,
            c.level,
            c.score,
            c.right.chain,
            c.right.sku,
            c.right.name,
            c.reason,
        )
