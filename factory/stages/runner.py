"""The one stage runner. A stage is a `Task` value (what to ask, how to key it, which rows its answers
make); `run_stage` does everything else, once, for every stage:

- the run's lifecycle: the stage is marked running, its identity bound (a changed model, prompt, schema,
  taxonomy, sampling or seed must go to a new run folder), recorded complete with its counts at the end,
  or marked interrupted when it stops early;
- exactly-once resume: a unit whose key is already committed is skipped, never asked again;
- streaming: units are pulled from the task lazily and submitted to the engine's stream while it has
  room, so the engine's batch never drains at a shard boundary and retries rejoin the running batch;
- lazy engine start: an engine is started only when there is a unit to ask (timed apart);
- commits: rows and failure rows are written as atomic shards every `commit_rows` finished units or every
  `commit_seconds`, whichever comes first, so a kill loses at most that much work;
- lineage on every row, failure rows in `failed/`, progress with a total where the task knows it, stats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from factory.core.errors import FactoryError
from factory.core.progress import progress_bar
from factory.data.store import FAILED_SCHEMA, ShardWriter, existing_values, read_dataset, shard_paths
from factory.engines.base import Request, Result, Sampling
from factory.stages.context import StageContext, StageStats

COMMIT_ROWS = 256
COMMIT_SECONDS = 30.0


@dataclass
class Unit:
    """One unit of work: what the task needs to build its rows, the key that marks it done, and the
    requests it makes (several for a unit that samples k times or asks once per category; none for a
    unit that needs no LLM)."""

    key: str
    item: Any
    requests: list[Request] = field(default_factory=list)


class Wait:
    """Yielded by a task whose next units depend on answers still in flight (synthesis asks for more
    sentences of a category only once it knows how many the last requests gave)."""


WAIT = Wait()

Lineage = Callable[[Request | None, Result], dict]


class Task(Protocol):
    name: str  # written on failure rows: label, synthesize, check, consistency
    stage: str  # the output folder and the manifest entry: silver, bronze, silver_check, ...
    title: str  # for the progress bar and the summary
    row_schema: dict  # Polars schema of the output table
    key_column: str  # the output column holding a unit's key
    schema: dict | None  # the JSON schema the engine constrains outputs to; None for a task with no LLM
    hashes: tuple[str, str, str]  # prompt, schema and taxonomy hash, recorded on every row

    def identity(self, ctx: StageContext) -> dict: ...

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit | Wait]: ...

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]: ...


class TaskDefaults:
    """What most tasks share; a task overrides what it does differently."""

    unit_name = "rows"

    def sampling(self, ctx: StageContext) -> Sampling:
        return ctx.sampling

    def total(self) -> int | None:
        return None

    def completed(self, done: set[str]) -> int:
        """Progress already made by earlier runs of this stage (shown at start)."""
        return 0

    def progress_of(self, units: int, ok_rows: list[dict]) -> int:
        """How far a commit moves the progress bar: finished units, unless the task counts rows."""
        return units

    def prepare(self, ctx: StageContext) -> None:
        """Read what earlier runs of this stage left that the task plans with (synthesis: kept counts)."""

    def committed_keys(self, ctx: StageContext) -> set[str]:
        """Keys of committed units: in the output, and in the ledger for units that gave no row."""
        keys = existing_values(ctx.run.out / self.stage, self.key_column)
        return keys | existing_values(ctx.run.out / self.ledger[0], self.key_column) if self.ledger else keys

    # A task may keep a ledger beside its rows: (folder, schema) of rows the runner commits right after each
    # shard of rows (synthesis records every answered request there, kept rows or not).
    ledger: tuple[str, dict] | None = None

    def ledger_rows(self, units: list[Unit], results: list[list[Result]], ok_rows: list[dict]) -> list[dict]:
        return []

    def summary(self, stats: StageStats) -> dict:
        """Stage-specific facts for the manifest, beside the counts."""
        return {}

    @staticmethod
    def failure_row(task: str, key: str, text: str, result: Result, lineage: dict) -> dict:
        return {"task": task, "row_id": key, "text": text, "error": result.error, "raw_output": result.raw, **lineage}


def judged_rows(run_dir: Path, dataset: str, columns: tuple[str, ...], limit: int | None) -> list[dict]:
    """The rows of `<run>/<dataset>` a judging task (check, consistency) works on, in dataset order."""
    folder = Path(run_dir) / dataset
    if not shard_paths(folder):
        producer = "label" if dataset == "silver" else "synthesize"
        raise FactoryError(f"no {dataset} shards in {folder}; run `bin/generate {producer}` first")
    return read_dataset(folder).select(*columns).to_dicts()[:limit]


@dataclass
class _Finished:
    unit: Unit
    results: list[Result]
    ok_rows: list[dict]
    failed_rows: list[dict]


class _Committer:
    """Buffers finished units and writes them as atomic shards on size or time, whichever comes first."""

    def __init__(self, task, ctx: StageContext, stats: StageStats, commit_rows: int, commit_seconds: float, advance):
        self.task, self.ctx, self.stats, self.advance = task, ctx, stats, advance
        self.writer = ShardWriter(ctx.run.out / task.stage, task.row_schema)
        self.failures = ShardWriter(ctx.run.out / "failed", FAILED_SCHEMA)
        self.ledger = ShardWriter(ctx.run.out / task.ledger[0], task.ledger[1]) if task.ledger else None
        self.commit_rows, self.commit_seconds = commit_rows, commit_seconds
        self.buffer: list[_Finished] = []
        self.last = time.monotonic()

    def add(self, finished: _Finished) -> None:
        self.buffer.append(finished)
        if len(self.buffer) >= self.commit_rows or time.monotonic() - self.last >= self.commit_seconds:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.buffer:
            return
        buffer, self.buffer = self.buffer, []
        ok_rows = [row for f in buffer for row in f.ok_rows]
        failed_rows = [row for f in buffer for row in f.failed_rows]
        self.writer.write(ok_rows)
        self.failures.write(failed_rows)
        self.stats.rows += len(ok_rows)
        self.stats.failed += len(failed_rows)
        if self.ledger is not None:  # after the rows: a kill in between leaves work to redo, never rows lost
            self.ledger.write(self.task.ledger_rows([f.unit for f in buffer], [f.results for f in buffer], ok_rows))
        self.advance(len(buffer), ok_rows)


def run_stage(task, ctx: StageContext, commit_rows: int | None = None, commit_seconds: float | None = None) -> StageStats:
    """Run `task` in ctx.run to completion (or resume it), and record it in the run's manifest."""
    run = ctx.run
    stats = StageStats(task.title)
    run.mark_running(task.stage)
    try:
        run.bind_identity(task.stage, task.identity(ctx))
        task.prepare(ctx)
        done = task.committed_keys(ctx)
        stats.skipped = task.completed(done)
        _feed(task, ctx, done, stats, commit_rows or ctx.commit_rows or COMMIT_ROWS,
              commit_seconds if commit_seconds is not None else ctx.commit_seconds)
    except BaseException as exc:
        run.mark_interrupted(task.stage, type(exc).__name__)
        raise
    stats.workers_used = ctx.engine_workers()
    run.record_stage(task.stage, {**stats.manifest_info(), **ctx.manifest_info(), **task.summary(stats)})
    return stats


def _feed(task, ctx: StageContext, done: set[str], stats: StageStats, commit_rows: int, commit_seconds: float) -> None:
    sampling = task.sampling(ctx)
    stream = None
    started: float | None = None
    fed_from = time.perf_counter()  # a task with no LLM is timed from here
    units = iter(task.units(ctx, done))
    # Units finish in the order they were taken (rows and shards do not depend on which output came back
    # first); a unit waits in `open_units` until its results and those of every earlier unit are in.
    open_units: dict[int, tuple[Unit, list[Result | None]]] = {}
    next_id = next_to_finish = 0
    exhausted = idle = False
    prompt_hash, schema_hash, taxonomy_hash = task.hashes

    def lineage(request: Request | None, result: Result) -> dict:
        return ctx.lineage(prompt_hash, schema_hash, taxonomy_hash, request.seed if request else ctx.seed, result)

    with progress_bar(task.unit_name) as progress:
        total = task.total()
        bar = progress.add_task(task.title, total=total, completed=min(task.completed(done), total or 0))

        def advance(count: int, ok_rows: list[dict]) -> None:
            progress.advance(bar, task.progress_of(count, ok_rows))

        committer = _Committer(task, ctx, stats, commit_rows, commit_seconds, advance)

        def finish_ready() -> None:
            nonlocal next_to_finish
            while next_to_finish in open_units and all(r is not None for r in open_units[next_to_finish][1]):
                unit, results = open_units.pop(next_to_finish)
                next_to_finish += 1
                ok_rows, failed_rows = task.rows(unit, results, lineage)
                stats.completion_tokens += sum(r.completion_tokens for r in results)
                stats.failures += [(str(f.get("text", ""))[:60], f.get("error") or "") for f in failed_rows]
                committer.add(_Finished(unit, results, ok_rows, failed_rows))

        try:
            while True:
                window = ctx.engine.stream_window if stream is not None else 1
                waiting = False
                while not exhausted and (stream is None or stream.in_flight < window):
                    unit = next(units, None)
                    if unit is None:
                        exhausted = True
                        break
                    if isinstance(unit, Wait):
                        waiting = True
                        break
                    if unit.key in done:
                        stats.skipped += 1
                        continue
                    open_units[next_id] = (unit, [None] * len(unit.requests))
                    next_id += 1
                    if not unit.requests:  # nothing to ask an LLM: the task builds its rows directly
                        finish_ready()
                        continue
                    if stream is None:  # the engine starts only when there is a request to make; timed apart
                        ctx.check_prompts_fit(unit.requests, sampling, task.name)
                        stats.engine_start_seconds = ctx.start_engine()
                        started = time.perf_counter()
                        stream = ctx.engine.open_stream(task.schema, sampling)
                        window = ctx.engine.stream_window
                    for index, request in enumerate(unit.requests):
                        stream.submit((next_id - 1, index), request)
                    stats.requests += len(unit.requests)
                if stream is None or stream.in_flight == 0:
                    if exhausted or (waiting and idle):
                        break  # a task that waits with nothing in flight has nothing more to ask
                    idle = waiting
                    continue
                idle = False
                for (unit_id, index), result in stream.poll():
                    open_units[unit_id][1][index] = result
                finish_ready()
            committer.flush()
        except KeyboardInterrupt:
            committer.flush()  # rows of finished units are complete: keep them, then stop
            raise
        finally:
            if stream is not None:
                stream.close()
            stats.seconds = time.perf_counter() - (started if started is not None else fed_from)
