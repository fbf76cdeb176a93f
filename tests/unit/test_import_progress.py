"""The import's progress display: a bar when the total is known, else a rate."""

from __future__ import annotations

import io

from ecmahost.engine.cli.progress import import_progress
from rich.console import Console


def shown(total: int | None, completed: int) -> str:
    output = io.StringIO()
    console = Console(file=output, force_terminal=True, width=120, color_system=None)
    with import_progress(console, total) as progress:
        task = progress.add_task("importing CSV", total=total)
        progress.update(task, completed=completed)
        progress.refresh()
    return output.getvalue()


def test_a_known_total_shows_a_bar_with_the_share_done() -> None:
    text = shown(200, 50)
    assert "50/200" in text and "25%" in text
    assert "━" in text  # the bar


def test_an_unknown_total_shows_the_count_without_a_share() -> None:
    text = shown(None, 1234)
    assert "1,234 records" in text
    assert "%" not in text
