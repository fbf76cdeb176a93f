"""Export drain: ``--changes`` queued changes (a third adds, a third replaces, a third
deletes) exported to a CSV target of ``--rows`` users, against ONE atomic rewrite of
that file by the CSV connector, measured in the same run on the same file.

Everything runs in this process, opened the way the host opens it (``Host.open``),
with no export worker running: the changes are staged the way SCIM writes stage
them, so all of them are queued, then the connector's exporter drains them with
``drain_once`` at the connector's configured batch size. The last line is the whole
result as JSON.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ecmahost.connectors.base import Change, ChangeKind
from ecmahost.engine import queue
from ecmahost.engine.config import load_config
from ecmahost.engine.host import ConnectorRuntime, Host
from ecmahost.engine.logs import configure_logging
from ecmahost.engine.space import ConnectorSpace, Staging, StoredObject, object_id_for
from ecmahost.engine.space.states import OPEN_STATUSES, Op
from ecmahost.engine.workers.exporter import Exporter

from bench.report import Sizes, emit, figures_table, rate, ratio, timed_async
from bench.target import (
    CONNECTOR,
    EXT,
    TOKEN,
    TOKEN_VARIABLE,
    anchor,
    read_csv,
    user,
    write_target,
)

TARGET_REWRITES = 3
REWRITE_SAMPLES = 3
STAGING_CONCURRENCY = 256
"""Writers in flight while staging: enough to fill the group writer's largest group."""
NEW_TITLE = "Lead"


@dataclass(frozen=True, slots=True)
class Plan:
    """Which users each kind of change touches: adds are new users after the file's
    last one; replaces and deletes are disjoint random users of the file."""

    rows: int
    adds: range
    replaces: list[int]
    deletes: list[int]

    @classmethod
    def drawn(cls, rows: int, changes: int, seed: int = 7) -> Plan:
        deletes = changes // 3
        adds = changes // 3
        replaces = changes - adds - deletes
        if replaces + deletes > rows:
            raise SystemExit(f"{changes:,} changes need at least {replaces + deletes:,} rows")
        existing = random.Random(seed).sample(range(rows), replaces + deletes)
        return cls(rows, range(rows, rows + adds), existing[:replaces], existing[replaces:])

    @property
    def changes(self) -> int:
        return len(self.adds) + len(self.replaces) + len(self.deletes)

    def expected_anchors(self) -> set[str]:
        """The anchors the file must hold once every change is exported."""
        kept = set(range(self.rows)) - set(self.deletes)
        return {anchor(i) for i in (*kept, *self.adds)}


# -- staging ----------------------------------------------------------------------------

Job = Callable[[], Awaitable[tuple[StoredObject, int | None]]]


def _jobs(space: ConnectorSpace, runtime: ConnectorRuntime, plan: Plan) -> list[Job]:
    """One write per change, shuffled: each export batch then mixes the three kinds, as
    Entra's traffic does, instead of a run of adds the connector could just append."""

    def add(i: int) -> Job:
        attributes = runtime.mapper.attributes_from({EXT: user(i)})  # as a POST body maps
        return lambda: space.create(CONNECTOR, anchor(i), Staging(attributes, True, Op.UPSERT))

    def replace(i: int) -> Job:
        def decide(before: StoredObject) -> Staging:  # a PATCH of Title
            return Staging({**before.attributes, "Title": NEW_TITLE}, True, Op.UPSERT)

        return lambda: space.update(CONNECTOR, object_id_for(CONNECTOR, anchor(i)), decide)

    def delete(i: int) -> Job:
        def decide(before: StoredObject) -> Staging:  # as engine/users.py stages a DELETE
            return Staging(
                before.attributes, visible=False, export=Op.DELETE, external_id=before.external_id
            )

        return lambda: space.update(CONNECTOR, object_id_for(CONNECTOR, anchor(i)), decide)

    jobs = [
        *(add(i) for i in plan.adds),
        *(replace(i) for i in plan.replaces),
        *(delete(i) for i in plan.deletes),
    ]
    random.Random(11).shuffle(jobs)
    return jobs


async def _stage(jobs: list[Job]) -> None:
    """Run every job with ``STAGING_CONCURRENCY`` in flight, so the group writer
    commits them in groups rather than one fsync each; each must queue an event."""
    pending: Iterator[Job] = iter(jobs)

    async def writer() -> None:
        for job in pending:
            _, event_id = await job()
            if event_id is None:
                raise SystemExit("a staged change queued no export event")

    await asyncio.gather(*(writer() for _ in range(STAGING_CONCURRENCY)))


# -- measuring --------------------------------------------------------------------------


async def _rewrite_s(runtime: ConnectorRuntime) -> float:
    """The median time of one whole-file rewrite: a REPLACE of user 0 as the file
    already holds it, so the file is the same afterwards."""
    change = Change(ChangeKind.REPLACE, anchor(0), runtime.mapper.attributes_from({EXT: user(0)}))
    samples = []
    for _ in range(REWRITE_SAMPLES):
        [result], seconds = await timed_async(runtime.connector.export([change]))
        if not result.ok:
            raise SystemExit(f"the reference rewrite failed: {result.error}")
        samples.append(seconds)
    return statistics.median(samples)


@dataclass(frozen=True, slots=True)
class Drain:
    seconds: float
    batches: int
    exported: int
    largest_batch: int


async def _drain(exporter: Exporter) -> Drain:
    """Export batches until none is left, each as large as the exporter makes them
    for this connector (its configured ``export_batch_size``), as the worker does."""

    async def batches() -> list[int]:
        sizes = []
        while done := await exporter.drain_once():
            sizes.append(done)
        return sizes

    sizes, seconds = await timed_async(batches())
    return Drain(seconds, len(sizes), sum(sizes), max(sizes, default=0))


# -- checking ---------------------------------------------------------------------------


async def _check(space: ConnectorSpace, target: Path, plan: Plan, drain: Drain) -> None:
    """The file holds exactly the expected users, replaced ones with their new Title,
    and the queue holds no open event; SystemExit otherwise."""
    rows = list(read_csv(target))
    anchors = [row["AzureObjectID"] for row in rows]
    titles = {row["AzureObjectID"]: row["Title"] for row in rows}
    expected = plan.expected_anchors()
    if len(anchors) != len(expected) or set(anchors) != expected:
        raise SystemExit(
            f"the file holds {len(anchors):,} rows, not the {len(expected):,} expected"
        )
    if any(titles[anchor(i)] != NEW_TITLE for i in plan.replaces):
        raise SystemExit("a replaced user's new Title is not in the file")
    still_open = 0
    for status in OPEN_STATUSES:
        listed = await queue.list_events(space, connector=CONNECTOR, status=status, limit=10)
        still_open += len(listed)
    if still_open or drain.exported != plan.changes:
        raise SystemExit(f"{still_open} events still open; {drain.exported} objects exported")


# -- the run ----------------------------------------------------------------------------


async def _measure(config_file: Path, plan: Plan) -> tuple[dict[str, Any], list[str]]:
    os.environ[TOKEN_VARIABLE] = TOKEN  # the configuration names the token by variable
    config = load_config(config_file)
    configure_logging(config.host.log_level)  # as the command line does
    host = Host(config)
    await host.open()  # no serve=True: no export worker drains the queue meanwhile
    assert host.space is not None
    try:
        runtime = host.runtime(CONNECTOR)
        report, import_s = await timed_async(runtime.importer.full_import())
        if not report.ok or report.counts.get("added") != plan.rows:
            raise SystemExit(f"the import failed: {report}")
        _, staging_s = await timed_async(_stage(_jobs(host.space, runtime, plan)))
        rewrite_s = await _rewrite_s(runtime)
        drain = await _drain(runtime.exporter)
        await _check(host.space, config_file.parent / "InputFile.txt", plan, drain)
    finally:
        await host.close()
    notes = [
        f"import of {plan.rows:,} rows: {import_s:.1f} s; "
        f"staging of {plan.changes:,} changes: {staging_s:.1f} s (both untimed)"
    ]
    return _result(plan, drain, rewrite_s), notes


def _result(plan: Plan, drain: Drain, rewrite_s: float) -> dict[str, Any]:
    return {
        "benchmark": "export_drain",
        "rows": plan.rows,
        "changes": plan.changes,
        "adds": len(plan.adds),
        "replaces": len(plan.replaces),
        "deletes": len(plan.deletes),
        "drain_s": round(drain.seconds, 3),
        "changes_per_s": round(rate(plan.changes, drain.seconds), 1),
        "rewrite_s": round(rewrite_s, 4),
        "drain_in_rewrites": round(ratio(drain.seconds, rewrite_s), 2),
        "batches": drain.batches,
        "largest_batch": drain.largest_batch,
    }


def _report(result: dict[str, Any], notes: list[str]) -> None:
    table = figures_table(
        f"Export drain: {result['changes']:,} changes to a file of {result['rows']:,} rows",
        [
            (
                "changes (adds / replaces / deletes)",
                f"{result['changes']:,} ({result['adds']:,} / {result['replaces']:,} / "
                f"{result['deletes']:,})",
                "",
            ),
            ("drain", f"{result['drain_s']:.2f} s", ""),
            ("changes/s", f"{result['changes_per_s']:,.0f}", ""),
            ("one rewrite of the file (median)", f"{result['rewrite_s']:.3f} s", ""),
            ("drain in rewrites", f"{result['drain_in_rewrites']:.1f}", f"≤ {TARGET_REWRITES}"),
            ("export batches", f"{result['batches']:,}", ""),
            ("largest batch", f"{result['largest_batch']:,} changes", ""),
        ],
    )
    emit(table, result, notes)


def main() -> None:
    sizes = Sizes(__doc__.splitlines()[0], "20,000 rows and 4,000 changes")
    sizes.add("--rows", 100_000, 20_000, "users the target file holds")
    sizes.add("--changes", 20_000, 4_000, "changes queued, then drained")
    args = sizes.parse()
    with tempfile.TemporaryDirectory(prefix="ecmahost-bench-") as tmp:
        config = write_target(Path(tmp), args.rows)
        plan = Plan.drawn(args.rows, args.changes)
        _report(*asyncio.run(_measure(config, plan)))


if __name__ == "__main__":
    main()
