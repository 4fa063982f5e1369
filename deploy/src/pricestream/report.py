"""Rich tables of figures, for the CLI and the benchmarks."""

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table


def summary_table(title: str, values: dict[str, Any]) -> Table:
    """Render a dict of figures as a two-column table."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, str(value))
    return table


def report(console: Console, title: str, figures: dict[str, Any], out: Path) -> None:
    """Print figures as a table and save them as JSON."""
    console.print(summary_table(title, figures))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2))
