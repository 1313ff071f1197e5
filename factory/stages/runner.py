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
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar, cast

from factory.core.progress import progress_bar
from factory.data.store import FAILED_SCHEMA, ShardWriter, content_key, existing_values, read_dataset
from factory.data.side_tables import SideTable, require_dataset
from factory.engines.base import EngineStream, Request, Result, Sampling
from factory.stages.call import LLMCall
from factory.stages.context import RunContext, StageContext, StageStats

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

C = TypeVar("C", bound=RunContext)


class Lineage(Protocol):
    """Builds a row's lineage columns from the task's call: `lineage(request, result)`, with the request's
    seed (the run's seed where there is no request), or `seed=` for a unit labelled without a request."""

    def __call__(self, request: Request | None, result: Result | None, *, seed: int | None = None) -> dict: ...


class Task(ABC, Generic[C]):
    """The whole contract between a stage and `run_stage`. A stage subclasses it, sets the class attributes
    (and `call` where it asks an LLM) and writes `units` and `rows`; identity, lineage, resume, commits and
    the manifest come from here and from the runner. A task with no LLM call says what determines its
    output by overriding `identity`. `C` is the context it runs in: a `StageContext` for a task that asks an
    LLM (`LLMTask`), a context with a run and no engine for one that does not."""

    name: str  # written on failure rows: label, synthesize, check, consistency
    stage: str  # the output folder and the manifest entry: silver, bronze, silver_check, ...
    title: str  # for the progress bar and the summary
    row_schema: dict[str, Any]  # Polars schema of the output table
    key_column: str  # the output column holding a unit's key
    unit_name = "rows"  # what the progress bar counts
    # The one LLM call the task makes: the runner derives the identity, the hashes on every row and the
    # schema the engine constrains outputs to from it. None for a task that asks no LLM.
    call: LLMCall | None = None

    @property
    def key_task(self) -> str:
        """The `task` field of the task's content keys."""
        return self.name

    @property
    def schema(self) -> dict | None:
        """The JSON schema the engine constrains outputs to (the call's)."""
        return self.call.schema if self.call is not None else None

    def identity(self, ctx: C) -> dict:
        """What, with the input, determines an output (model, prompt, schema, taxonomy, sampling, seed); a
        run folder holds one identity per stage. A task adds its own settings to the call's."""
        if self.call is None or not isinstance(ctx, StageContext):
            raise TypeError(f"{type(self).__name__} asks no LLM: it must override identity()")
        return self.call.identity(ctx)

    def unit_key(self, identity: dict, **inputs: object) -> str:
        """The content key of one unit: its inputs under an identity."""
        return content_key(task=self.key_task, **inputs, **identity)

    def sampling(self, ctx: StageContext) -> Sampling:
        """How the engine samples this task's requests (asked only once there is a request)."""
        return ctx.sampling

    def total(self) -> int | None:
        """The units (or rows) the progress bar counts to, where the task knows it."""
        return None

    def prepare(self, ctx: C) -> None:
        """Read what earlier runs of this stage left that the task plans with, before the first unit."""

    def committed_keys(self, ctx: C) -> set[str]:
        """Keys of committed units: their rows are in the output."""
        return existing_values(ctx.run.out / self.stage, self.key_column)

    @abstractmethod
    def units(self, ctx: C, done: set[str]) -> Iterator[Unit | Wait]:
        """The work, streamed: `Unit(key, item, requests)`; a task whose next units depend on answers in
        flight yields `WAIT`."""

    @abstractmethod
    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        """The rows and the failure rows of one finished unit."""

    def summary(self, stats: StageStats) -> dict:
        """Stage-specific facts for the manifest, beside the counts."""
        return {}

    @staticmethod
    def failure_row(task: str, key: str, text: str, result: Result, lineage: dict) -> dict:
        return {"task": task, "row_id": key, "text": text, "error": result.error, "raw_output": result.raw, **lineage}


class LLMTask(Task[StageContext]):
    """A task that asks an LLM: it sets `call` (in `__init__` where the call depends on its arguments)."""

    call: LLMCall


TaskDefaults = Task  # the name tasks subclassed before Task held the defaults itself


class SideTableTask(Task):
    """A task that judges the rows of a run's dataset into its side table `<run>/<dataset>_<kind>/` without an
    LLM (dedup, the PHI scan, the label-noise flags): each unit's item is its one row, and the committed keys
    are the table's."""

    dataset: str
    kind: str
    call = None

    def committed_keys(self, ctx) -> set[str]:
        return SideTable(ctx.run.out, self.dataset, self.kind).keys()

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        return [unit.item], []


class LedgerTask(LLMTask):
    """A task whose units are requests that each give several rows, and whose plan depends on what earlier
    runs kept (synthesis): progress counts rows, and a ledger beside the rows records every spent unit,
    kept rows or not, so a rerun never asks again for a unit whose answer gave nothing to keep."""

    ledger: tuple[str, dict[str, Any]]  # (folder, schema) of the ledger rows, committed right after each shard of rows

    @abstractmethod
    def ledger_rows(self, units: list[Unit], results: list[list[Result]], ok_rows: list[dict]) -> list[dict]:
        """The ledger rows of the units of one commit."""

    @abstractmethod
    def completed(self, done: set[str]) -> int:
        """Rows already made by earlier runs of this stage (shown at start)."""

    def committed_keys(self, ctx: StageContext) -> set[str]:
        """Keys in the output, and in the ledger for units that gave no row."""
        return super().committed_keys(ctx) | existing_values(ctx.run.out / self.ledger[0], self.key_column)


def judged_rows(run_dir: Path, dataset: str, columns: tuple[str, ...], limit: int | None) -> list[dict]:
    """The rows of `<run>/<dataset>` a judging task (check, consistency) works on, in dataset order."""
    return read_dataset(require_dataset(run_dir, dataset)).select(*columns).to_dicts()[:limit]


@dataclass
class _Finished:
    unit: Unit
    results: list[Result]
    ok_rows: list[dict]
    failed_rows: list[dict]


class _Committer:
    """Buffers finished units and writes them as atomic shards on size or time, whichever comes first."""

    def __init__(self, task: Task[C], ctx: C, stats: StageStats, commit_rows: int, commit_seconds: float,
                 advance: Callable[[int, list[dict]], None]):
        self.task, self.ctx, self.stats, self.advance = task, ctx, stats, advance
        self.writer = ShardWriter(ctx.run.out / task.stage, task.row_schema)
        failed_schema: dict[str, Any] = FAILED_SCHEMA  # Polars schemas mix dtype classes and instances
        self.failures = ShardWriter(ctx.run.out / "failed", failed_schema)
        self.ledger_task = task if isinstance(task, LedgerTask) else None
        self.ledger = (ShardWriter(ctx.run.out / self.ledger_task.ledger[0], self.ledger_task.ledger[1])
                       if self.ledger_task is not None else None)
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
        if self.ledger is not None and self.ledger_task is not None:
            # after the rows: a kill in between leaves work to redo, never rows lost
            self.ledger.write(self.ledger_task.ledger_rows([f.unit for f in buffer], [f.results for f in buffer],
                                                           ok_rows))
        self.advance(len(buffer), ok_rows)


def run_stage(task: Task[C], ctx: C, commit_rows: int | None = None, commit_seconds: float | None = None) -> StageStats:
    """Run `task` in ctx.run to completion (or resume it), and record it in the run's manifest."""
    run = ctx.run
    stats = StageStats(task.title)
    run.mark_running(task.stage)
    try:
        run.bind_identity(task.stage, task.identity(ctx))
        task.prepare(ctx)
        done = task.committed_keys(ctx)
        stats.skipped = _completed(task, done)
        _feed(task, ctx, done, stats, commit_rows or ctx.commit_rows or COMMIT_ROWS,
              commit_seconds if commit_seconds is not None else ctx.commit_seconds)
    except BaseException as exc:
        run.mark_interrupted(task.stage, type(exc).__name__)
        raise
    stats.workers_used = ctx.engine_workers()
    run.record_stage(task.stage, {**stats.manifest_info(), **ctx.manifest_info(), **task.summary(stats)})
    return stats


def _completed(task: Task[Any], done: set[str]) -> int:
    """Progress already made by earlier runs of this stage: rows for a ledger task, else none counted."""
    return task.completed(done) if isinstance(task, LedgerTask) else 0


def _feed(task: Task[C], ctx: C, done: set[str], stats: StageStats, commit_rows: int, commit_seconds: float) -> None:
    stream: EngineStream | None = None
    window = 1  # requests in flight the stream takes: the engine's window once it has started
    started: float | None = None
    fed_from = time.perf_counter()  # a task with no LLM is timed from here
    units = iter(task.units(ctx, done))
    # Units finish in the order they were taken (rows and shards do not depend on which output came back
    # first); a unit waits in `open_units` until its results and those of every earlier unit are in.
    open_units: dict[int, tuple[Unit, list[Result | None]]] = {}
    next_id = next_to_finish = 0
    exhausted = idle = False
    call = task.call
    counts_rows = isinstance(task, LedgerTask)  # a ledger task's units each give several rows: count rows

    def lineage(request: Request | None, result: Result | None, *, seed: int | None = None) -> dict:
        if call is None or not isinstance(ctx, StageContext):
            raise TypeError(f"{type(task).__name__} asks no LLM: its rows have no LLM lineage")
        if seed is None:
            seed = request.seed if request is not None else ctx.seed
        return call.lineage(ctx, seed, result)

    with progress_bar(task.unit_name) as progress:
        total = task.total()
        bar = progress.add_task(task.title, total=total, completed=min(_completed(task, done), total or 0))

        def advance(count: int, ok_rows: list[dict]) -> None:
            progress.advance(bar, len(ok_rows) if counts_rows else count)

        committer = _Committer(task, ctx, stats, commit_rows, commit_seconds, advance)

        def finish_ready() -> None:
            nonlocal next_to_finish
            while next_to_finish in open_units and all(r is not None for r in open_units[next_to_finish][1]):
                unit, results = open_units.pop(next_to_finish)
                next_to_finish += 1
                done_results = [r for r in results if r is not None]  # all in: finish_ready waits for them
                ok_rows, failed_rows = task.rows(unit, done_results, lineage)
                stats.completion_tokens += sum(r.completion_tokens for r in done_results)
                stats.failures += [(str(f.get("text", ""))[:60], f.get("error") or "") for f in failed_rows]
                committer.add(_Finished(unit, done_results, ok_rows, failed_rows))

        try:
            while True:
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
                        if call is None or not isinstance(ctx, StageContext):
                            raise TypeError(f"{type(task).__name__} makes requests but declares no LLM call")
                        sampling = task.sampling(ctx)
                        ctx.check_prompts_fit(unit.requests, sampling, task.name)
                        stats.engine_start_seconds = ctx.start_engine()
                        started = time.perf_counter()
                        stream = ctx.engine.open_stream(call.constraint, sampling)
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
                for tag, result in stream.poll():
                    unit_id, index = cast(tuple[int, int], tag)  # what this loop submitted
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


def run_local(task: Task, run_dir: Path) -> StageStats:
    """Run a task that asks no LLM (dedup, the PHI scan, the label-noise flags) in `run_dir`: the run is opened
    here, its lock held for the whole stage and released on the way out."""
    from factory.data.run_folder import Run
    from factory.stages.local import LocalContext

    with Run.open(run_dir) as run:
        return run_stage(task, LocalContext(run))
