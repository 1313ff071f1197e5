"""What the LLM stages share: lineage of every row, lazy engine start, per-request seeds, failure rows."""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from dataclasses import dataclass, field
from typing import Protocol

from factory.engines.base import Engine, Result, Sampling
from factory.engines.model_ref import ModelRef
from factory.data.run_folder import Run
from factory.core.errors import FactoryError
from factory.data.store import utc_now


def request_seed(run_seed: int, key: str) -> int:
    """A stable per-request seed: the same request samples the same output in any batch or rerun."""
    return int(hashlib.sha256(f"{run_seed}:{key}".encode()).hexdigest()[:8], 16)


class RunContext(Protocol):
    """What the runner reads from the context of any stage: its run, how often to commit, and for the
    manifest which engine workers did the work (none for a stage that asks no LLM)."""

    @property
    def run(self) -> Run: ...

    @property
    def commit_rows(self) -> int | None: ...

    @property
    def commit_seconds(self) -> float: ...

    def engine_workers(self) -> list[str]: ...

    def manifest_info(self) -> dict: ...


@dataclass
class StageContext:
    run: Run
    model: ModelRef
    engine_name: str
    sampling: Sampling
    seed: int
    engine_factory: Callable[[], Engine]
    commit_rows: int | None = None  # finished units per committed shard (default: the runner's)
    commit_seconds: float = 30.0  # commit at least this often, so a kill loses at most this much work
    # Counts a chat's prompt tokens with the model's tokenizer, where the engine has a context limit: the
    # runner checks the first requests before an engine starts (a prompt that cannot fit fails in seconds,
    # not after the engine's start-up).
    prompt_tokens: Callable[[list[dict]], int] | None = None
    max_model_len: int | None = None
    _engine: Engine | None = field(default=None, init=False, repr=False)
    workers_used: list[str] = field(default_factory=list, init=False)  # kept past close() for the manifest

    @property
    def engine(self) -> Engine:
        """Started on first use, so a stage with nothing left to do never loads the model."""
        if self._engine is None:
            self._engine = self.engine_factory()
        return self._engine

    def start_engine(self) -> float:
        """Start the engine now and return the seconds it took (kept apart from generation time)."""
        started = time.perf_counter()
        _ = self.engine
        return time.perf_counter() - started

    def check_prompts_fit(self, requests: list, sampling: Sampling, what: str) -> None:
        """One clear error, naming the setting to raise, when a prompt plus its output budget cannot fit."""
        if self.prompt_tokens is None or not self.max_model_len or not requests:
            return
        longest = max(self.prompt_tokens(r.chat) for r in requests)
        needed = longest + sampling.max_tokens
        if needed > self.max_model_len:
            raise FactoryError(
                f"the {what} prompt is {longest:,} tokens and may take {sampling.max_tokens:,} more, over "
                f"--max-model-len {self.max_model_len:,}: raise --max-model-len to at least {needed:,} (the model's "
                "own limit permitting), or shorten the taxonomy's definitions and examples")

    def engine_workers(self) -> list[str]:
        """The replicas or actors that did work, from the live engine or the one just closed."""
        return self._engine.workers_used() if self._engine is not None else list(self.workers_used)

    def __enter__(self) -> StageContext:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.close(interrupted=kind is not None and issubclass(kind, KeyboardInterrupt))

    def close(self, interrupted: bool = False) -> None:
        """Release the engine; on an interrupt (Ctrl-C, SIGTERM) at once, so the command exits within the
        grace period a service manager gives it."""
        if self._engine is not None:
            self.workers_used = self._engine.workers_used()
            if interrupted:
                self._engine.stop_now()
            else:
                self._engine.close()
            self._engine = None

    def identity(self, prompt_hash: str, schema_hash: str, taxonomy_hash: str) -> dict:
        """The fields that, with the input, determine an output; they key every row. Batch size, memory
        settings and the engine's start-up mode are knobs, not identity."""
        return {
            "model_hash": self.model.hash,
            "prompt_hash": prompt_hash,
            "schema_hash": schema_hash,
            "taxonomy_hash": taxonomy_hash,
            "sampling": self.sampling.to_json(),
            "seed": self.seed,
        }

    def lineage(self, prompt_hash: str, schema_hash: str, taxonomy_hash: str, seed: int, result: Result | None) -> dict:
        """Where a row came from. Without a result (a row that sums up several answers, such as a
        self-consistency verdict) the per-answer fields are left out."""
        record: dict = {
            "run_id": self.run.run_id,
            "model_path": str(self.model.path),
            "model_hash": self.model.hash,
            "engine": self.engine_name,
            "prompt_hash": prompt_hash,
            "schema_hash": schema_hash,
            "taxonomy_hash": taxonomy_hash,
            "sampling": self.sampling.to_json(),
            "seed": seed,
        }
        if result is not None:
            record.update(finish_reason=result.finish_reason, prompt_tokens=result.prompt_tokens,
                          completion_tokens=result.completion_tokens, attempts=result.attempts)
        record["created_at"] = utc_now()
        return record

    def manifest_info(self) -> dict:
        """What the manifest records about the engine side of a stage."""
        return {"engine": self.engine_name, "model_path": str(self.model.path), "model_hash": self.model.hash,
                **self.model.lineage(), "sampling": self.sampling.to_json(), "seed": self.seed,
                **({"workers_used": workers} if (workers := self.engine_workers()) else {})}


@dataclass
class StageStats:
    stage: str
    rows: int = 0
    failed: int = 0
    skipped: int = 0
    requests: int = 0
    completion_tokens: int = 0
    engine_start_seconds: float = 0.0
    seconds: float = 0.0
    failures: list[tuple[str, str]] = field(default_factory=list)
    workers_used: list[str] = field(default_factory=list)  # scale-out paths: which engine replicas did work
    short: dict[str, int] = field(default_factory=dict)  # synthesis: categories left under the target (kept)

    def manifest_info(self) -> dict:
        return {"rows": self.rows, "failed": self.failed, "skipped": self.skipped, "requests": self.requests,
                "completion_tokens": self.completion_tokens, "seconds": round(self.seconds, 2),
                "engine_start_seconds": round(self.engine_start_seconds, 2),
                **({"short_categories": self.short} if self.short else {})}

    def summary(self, output: str) -> dict:
        rate = self.rows / self.seconds if self.seconds else 0.0
        return {
            "stage": self.stage,
            "rows written": self.rows,
            "failed": self.failed,
            "resumed (skipped)": self.skipped,
            "LLM requests": self.requests,
            "output tokens": self.completion_tokens,
            "engine start s": round(self.engine_start_seconds, 1),
            "generation s": round(self.seconds, 1),
            "rows/s": round(rate, 2),
            "output": output,
        }


@contextmanager
def scratch_context(ctx: StageContext | None) -> Iterator[StageContext]:
    """A context on a scratch run folder, removed afterwards, for measuring a stage on gold through the stage
    itself (the requests, seeds and outcomes its real runs get). It shares ctx's engine, started once and
    left for ctx to close; with no ctx it has no engine, for a task that asks no LLM."""
    with tempfile.TemporaryDirectory(prefix="scratch-run-") as folder, Run.open(Path(folder)) as run:
        if ctx is None:
            yield StageContext(run=run, model=ModelRef(path=Path("-"), hash="", embedded=False), engine_name="none",
                               sampling=Sampling(), seed=0, engine_factory=_no_engine)
            return
        shared = ctx
        yield StageContext(run=run, model=ctx.model, engine_name=ctx.engine_name, sampling=ctx.sampling, seed=ctx.seed,
                           engine_factory=lambda: shared.engine, commit_rows=ctx.commit_rows,
                           commit_seconds=ctx.commit_seconds, prompt_tokens=ctx.prompt_tokens,
                           max_model_len=ctx.max_model_len)


def _no_engine() -> Engine:
    raise FactoryError("this stage asks no LLM: it has no engine")
