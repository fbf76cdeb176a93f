"""The progress display of ``ecmahost import``: a bar with the time left when the
target tells how much there is (a SQL row count, a CSV file's lines), otherwise a
spinner with the count and the rate, so a long import visibly moves either way."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

__all__ = ["import_progress"]


class RateColumn(ProgressColumn):
    """Records per second over rich's recent window (blank until it has one)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f} records/s")


def import_progress(console: Console, total: int | None) -> Progress:
    """The display for an import of ``total`` records (None: unknown)."""
    count = TextColumn(
        "{task.completed:,} records" if total is None else "{task.completed:,}/{task.total:,}"
    )
    if total is None:
        return Progress(
            SpinnerColumn(), TextColumn("[bold]{task.description}"), count, RateColumn(),
            TimeElapsedColumn(), console=console, transient=True,
        )  # fmt: skip
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), TaskProgressColumn(), count,
        RateColumn(), TimeRemainingColumn(), console=console, transient=True,
    )  # fmt: skip
