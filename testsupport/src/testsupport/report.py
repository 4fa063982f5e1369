"""The benchmarks' report: figures as a table on the console and as JSON in a file."""

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from pricestream.report import summary_table


def report(console: Console, title: str, figures: dict[str, Any], out: Path) -> None:
    """Print figures as a table and save them as JSON."""
    console.print(summary_table(title, figures))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
