"""Progress bars with rate and ETA, and the end-of-run summary table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

console = Console(stderr=True)


class RateColumn(ProgressColumn):
    def __init__(self, unit: str):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:.2f} {self.unit}/s" if speed else f"-- {self.unit}/s", style="progress.data.speed")


def progress_bar(unit: str = "rows") -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(unit),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def summary_table(title: str, rows: list[dict]) -> Table:
    """One column per stage, one row per measure: stays readable in a narrow terminal."""
    table = Table(title=title, show_header=True)
    table.add_column("")
    for row in rows:
        table.add_column(str(row.get("stage", "")), justify="right", overflow="fold")
    measures = [key for key in (rows[0] if rows else {}) if key != "stage"]
    for measure in measures:
        table.add_row(measure, *(f"{r[measure]:.2f}" if isinstance(r[measure], float) else str(r[measure]) for r in rows))
    return table
