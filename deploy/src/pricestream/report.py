"""Rich tables of figures for the CLI (the benchmarks' report builds on them: `testsupport.report`)."""

from typing import Any

from rich.table import Table


def summary_table(title: str, values: dict[str, Any]) -> Table:
    """Render a dict of figures as a two-column table."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        table.add_row(key, str(value))
    return table
