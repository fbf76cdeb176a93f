"""Full import: a generated CSV file of ``--rows`` users into the connector space by
the real command line (``ecmahost import CSV``), against Python's sqlite3 module
loading the same file into one table (bench/sqlite_reference.py).

Each side runs in a process of its own, so the wall time (spawn to exit, interpreter
start-up included) and the peak RSS are that side's alone. The ratio is ecmahost's
rows/s over the reference's; the last line is the whole result as JSON.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.processes import Finished, cli_import, run_measured
from bench.report import Sizes, emit, figures_table, rate, ratio, timed
from bench.target import REPO, write_target

TARGET_RATIO = 0.4
TARGET_RSS_MB = 300
TARGET_RSS_ROWS = 1_000_000


def _reference(source: Path, database: Path, rows: int) -> Finished:
    command = [sys.executable, "-m", "bench.sqlite_reference", str(source), str(database)]
    finished = run_measured(command, REPO).check()
    if finished.stdout.strip() != str(rows):
        raise SystemExit(f"the reference loaded {finished.stdout.strip()} rows, not {rows:,}")
    return finished


def _result(rows: int, ecmahost: Finished, reference: Finished) -> dict[str, Any]:
    ecmahost_rate, reference_rate = rate(rows, ecmahost.wall_s), rate(rows, reference.wall_s)
    return {
        "benchmark": "full_import",
        "rows": rows,
        "ecmahost_s": round(ecmahost.wall_s, 2),
        "ecmahost_rows_per_s": round(ecmahost_rate, 1),
        "reference_s": round(reference.wall_s, 2),
        "reference_rows_per_s": round(reference_rate, 1),
        "ratio": round(ratio(ecmahost_rate, reference_rate), 3),
        "ecmahost_peak_rss_mb": round(ecmahost.peak_rss_mb, 1),
        "reference_peak_rss_mb": round(reference.peak_rss_mb, 1),
    }


def _report(result: dict[str, Any], generate_s: float) -> None:
    rows = f"{result['rows']:,} rows"
    table = figures_table(
        f"Full import: {rows} (ecmahost import CSV vs sqlite3 executemany)",
        [
            ("ecmahost", f"{result['ecmahost_s']:.2f} s", ""),
            ("ecmahost rows/s", f"{result['ecmahost_rows_per_s']:,.0f}", ""),
            ("reference", f"{result['reference_s']:.2f} s", ""),
            ("reference rows/s", f"{result['reference_rows_per_s']:,.0f}", ""),
            ("ratio (rows/s ÷ reference)", f"{result['ratio']:.2f}", f"≥ {TARGET_RATIO}"),
            (
                "ecmahost peak RSS",
                f"{result['ecmahost_peak_rss_mb']:,.0f} MB",
                f"≤ {TARGET_RSS_MB} MB at {TARGET_RSS_ROWS:,} rows",
            ),
            ("reference peak RSS", f"{result['reference_peak_rss_mb']:,.0f} MB", ""),
        ],
    )
    emit(table, result, [f"CSV file of {rows} generated in {generate_s:.1f} s (untimed)"])


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "100,000 rows instead of 1,000,000")
    sizes.add("--rows", 1_000_000, 100_000, "rows of the generated CSV file")
    args = sizes.parse()
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        folder = Path(tmp)
        config, generate_s = timed(lambda: write_target(folder, args.rows))
        ecmahost = cli_import(config, args.rows)
        reference = _reference(folder / "InputFile.txt", folder / "reference.db", args.rows)
    _report(_result(args.rows, ecmahost, reference), generate_s)


if __name__ == "__main__":
    main()
