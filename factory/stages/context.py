"""What the LLM stages share: lineage of every row, lazy engine start, per-request seeds, failure rows."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from factory.engines.base import Engine, Result, Sampling
from factory.engines.model_ref import ModelRef
from factory.data.run_folder import Run
from factory.data.store import FAILED_SCHEMA, ShardWriter, utc_now


def request_seed(run_seed: int, key: str) -> int:
    """A stable per-request seed: the same request samples the same output in any batch or rerun."""
    return int(hashlib.sha256(f"{run_seed}:{key}".encode()).hexdigest()[:8], 16)


@dataclass
class StageContext:
    run: Run
    model: ModelRef
    engine_name: str
    sampling: Sampling
    seed: int
    engine_factory: Callable[[], Engine]
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

    def close(self) -> None:
        if self._engine is not None:
            self.workers_used = self._engine.workers_used()
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

    def lineage(self, prompt_hash: str, schema_hash: str, taxonomy_hash: str, seed: int, result: Result) -> dict:
        return {
            "run_id": self.run.run_id,
            "model_path": str(self.model.path),
            "model_hash": self.model.hash,
            "engine": self.engine_name,
            "prompt_hash": prompt_hash,
            "schema_hash": schema_hash,
            "taxonomy_hash": taxonomy_hash,
            "sampling": self.sampling.to_json(),
            "seed": seed,
            "finish_reason": result.finish_reason,
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "attempts": result.attempts,
            "created_at": utc_now(),
        }

    def failure_writer(self) -> ShardWriter:
        return ShardWriter(self.run.out / "failed", FAILED_SCHEMA)


def failure_row(task: str, row_id: str, text: str, result: Result, lineage: dict) -> dict:
    return {"task": task, "row_id": row_id, "text": text, "error": result.error, "raw_output": result.raw, **lineage}


def pending_work(items, key_of, done: set[str], stats: "StageStats") -> list[tuple]:
    """(item, key) for every item whose key is not committed yet; committed ones count as skipped."""
    todo = []
    for item in items:
        key = key_of(item)
        if key in done:
            stats.skipped += 1
        else:
            todo.append((item, key))
    return todo


def commit_shard(writer: ShardWriter, failures: ShardWriter, ok_rows: list[dict], failed_rows: list[dict],
                 stats: "StageStats", requests: int) -> None:
    """Commit one shard's rows and failures, and count them."""
    writer.write(ok_rows)
    failures.write(failed_rows)
    stats.rows += len(ok_rows)
    stats.failed += len(failed_rows)
    stats.requests += requests


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
