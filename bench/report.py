"""What every benchmark shares on its command line and in its output: size options
that ``--quick`` shrinks, a rich table, then ONE final JSON line with every figure
(the line scripts and the smoke test read)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from rich.console import Console
from rich.table import Table

T = TypeVar("T")


class Sizes:
    """Size options whose default depends on ``--quick``; a value given on the command
    line wins over both, so a test can run a benchmark at any size."""

    def __init__(self, description: str, quick_note: str) -> None:
        self.parser = argparse.ArgumentParser(description=description)
        self.parser.add_argument("--quick", action="store_true", help=quick_note)
        self._defaults: dict[str, tuple[int, int]] = {}

    def add(self, flag: str, full: int, quick: int, help: str) -> None:
        dest = flag.removeprefix("--").replace("-", "_")
        self._defaults[dest] = (full, quick)
        self.parser.add_argument(
            flag, type=_positive, help=f"{help} (default {full:,}; with --quick {quick:,})"
        )

    def parse(self, argv: Sequence[str] | None = None) -> argparse.Namespace:
        args = self.parser.parse_args(argv)
        for dest, (full, quick) in self._defaults.items():
            if getattr(args, dest) is None:
                setattr(args, dest, quick if args.quick else full)
        return args


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def figures_table(title: str, rows: Sequence[tuple[str, str, str]]) -> Table:
    """A table of ``(figure, value, target)`` rows."""
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def emit(table: Table, result: dict[str, Any], notes: Sequence[str] = ()) -> None:
    """Print the table, its notes, and the result as the last line of the output."""
    console = Console()
    if not console.is_terminal:  # rich's default of 80 columns would cut phase names
        console = Console(width=120)
    console.print(table)
    for note in notes:
        print(note)
    print(json.dumps(result), flush=True)


def ratio(numerator: float, denominator: float) -> float:
    """0 rather than a ZeroDivisionError: a tiny run may measure no time at all."""
    return numerator / denominator if denominator > 0 else 0.0


def rate(amount: float, seconds: float) -> float:
    """``amount`` per second."""
    return ratio(amount, seconds)


def timed(work: Callable[[], T]) -> tuple[T, float]:
    """``work()`` and the wall seconds it took."""
    started = time.perf_counter()
    result = work()
    return result, time.perf_counter() - started


async def timed_async(work: Awaitable[T]) -> tuple[T, float]:
    """``await work`` and the wall seconds it took."""
    started = time.perf_counter()
    result = await work
    return result, time.perf_counter() - started
