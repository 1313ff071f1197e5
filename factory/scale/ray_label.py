"""Labelling as a Ray Data pipeline over sharded Parquet: the multi-node scale-out of `run_label`.

Same exactly-once contract as the single-process path, by construction:
- the driver computes row ids and skips committed ones exactly as `run_label` does (`pending_shards`);
- it stages the pending sentences, with their rendered chats and per-request seeds, as Parquet shards in
  `<run>/.ray-input/` (rewritten on every run; on a multi-node cluster the run folder must be on storage
  every node can read);
- Ray Data reads them and a pool of actors, one engine each, generates (`Engine.generate`: the same
  validation and retry);
- results stream back to the driver, which alone holds the run lock and commits atomic shards through
  the same `SilverSink`, so rows are built by the same code and a killed job resumes like any other.

Ray starts with usage stats off, no dashboard, token auth off, its temp dir under data/cache/ and every
address on loopback. Its processes inherit the network guard (PYTHONPATH + FACTORY_NETGUARD): Ray's own
cloud-metadata probe is refused and logged inside Ray's dashboard process and never reaches the network.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict

import polars as pl

from factory.data.corpus import Sentence
from factory.engines import load_engine
from factory.engines.ray_pool import (ENGINE_START_TIMEOUT_S, bind_actor_cores, core_allocator, ray_environment,
                                      start_ray)
from factory.engines.base import EngineConfig, Request, Result, Sampling
from factory.core.errors import FactoryError
from factory.stages.label import SilverSink, pending_shards, prepare_label
from factory.stages.context import StageContext, StageStats, request_seed
from factory.data.store import atomic_write_parquet

STAGING = ".ray-input"
_INPUT_SCHEMA = {
    "row_id": pl.String, "note_id": pl.String, "sentence_index": pl.Int32, "char_start": pl.Int32,
    "char_end": pl.Int32, "text": pl.String, "chat": pl.String, "seed": pl.Int64,
}


def _stage_input(shards: Iterable[list[tuple[Sentence, str]]], labeler, ctx: StageContext, folder) -> int:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    total = 0
    for index, shard in enumerate(shards):
        rows = [{
            "row_id": row_id, "note_id": s.note_id, "sentence_index": s.sentence_index, "char_start": s.char_start,
            "char_end": s.char_end, "text": s.text, "chat": json.dumps(labeler.chat(s.text)),
            "seed": request_seed(ctx.seed, row_id),
        } for s, row_id in shard]
        atomic_write_parquet(pl.DataFrame(rows, schema=_INPUT_SCHEMA), folder / f"part-{index:05d}.parquet")
        total += len(rows)
    return total


class LabelWorker:
    """A Ray Data actor: one engine, bound to its own cores on CPU, labels staged batches."""

    def __init__(self, engine: str, config: dict, schema: dict, sampling: dict, threads: int, bind_cores: bool):
        if bind_cores:
            bind_actor_cores(threads)
        self.engine = load_engine(engine, EngineConfig(**config))
        self.schema, self.sampling = schema, Sampling(**sampling)
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def __call__(self, batch):
        import pyarrow as pa

        columns = batch.to_pydict()
        requests = [Request(json.loads(chat), int(seed)) for chat, seed in zip(columns["chat"], columns["seed"], strict=True)]
        results = self.engine.generate(requests, self.schema, self.sampling)
        del columns["chat"]
        columns.update(
            parsed=[json.dumps(r.parsed) if r.ok else None for r in results],
            raw=[r.raw for r in results],
            finish_reason=[r.finish_reason for r in results],
            prompt_tokens=[r.prompt_tokens for r in results],
            completion_tokens=[r.completion_tokens for r in results],
            attempts=[r.attempts for r in results],
            error=[r.error for r in results],
            worker=[self.worker] * len(results),
        )
        return pa.table(columns)


def _result(row: dict) -> Result:
    parsed = json.loads(row["parsed"]) if row["parsed"] is not None else None
    return Result(parsed=parsed, raw=row["raw"], finish_reason=row["finish_reason"], prompt_tokens=row["prompt_tokens"],
                  completion_tokens=row["completion_tokens"], attempts=row["attempts"], error=row["error"])


def run_label_ray(
    sentences: Iterable[Sentence],
    taxonomy,
    ctx: StageContext,
    engine: str,
    config: EngineConfig,
    workers: int,
    shard_size: int = 256,
    address: str | None = None,
) -> StageStats:
    """`run_label` across `workers` engine actors of a Ray cluster; same rows, same resume."""
    ray_environment(address)
    import ray
    from ray.data import ActorPoolStrategy

    labeler, done, stats = prepare_label(taxonomy, ctx)
    staging = ctx.run.out / STAGING
    pending = _stage_input(pending_shards(sentences, labeler, ctx, done, stats, shard_size), labeler, ctx, staging)
    if pending == 0:
        shutil.rmtree(staging, ignore_errors=True)
        return stats
    cores = len(os.sched_getaffinity(0))
    threads = max(1, cores // workers)
    started = time.perf_counter()
    start_ray(cpus=workers * threads + 1, address=address)  # +1: Ray Data's read tasks need a CPU too
    stats.engine_start_seconds = time.perf_counter() - started  # Ray start-up; engines start inside the actors
    gpus = ray.cluster_resources().get("GPU", 0)
    # Start every engine before the first batch is handed out: a small job then spreads over all of them
    # instead of going to whichever engine was up first (and a pool that cannot start fails clearly).
    ray.data.DataContext.get_current().wait_for_min_actors_s = ENGINE_START_TIMEOUT_S
    allocator = core_allocator()
    sink = SilverSink(labeler, ctx, stats)
    try:
        # At least two blocks per actor: Ray Data may hand one actor a whole small block bundle otherwise.
        blocks = max(2 * workers, math.ceil(pending / shard_size))
        data = ray.data.read_parquet(str(staging)).repartition(blocks)
        data = data.map_batches(
            LabelWorker,
            fn_constructor_kwargs={
                "engine": engine, "config": asdict(config), "schema": labeler.schema,
                "sampling": json.loads(ctx.sampling.to_json()), "threads": threads, "bind_cores": not gpus,
            },
            batch_size=max(1, min(shard_size, math.ceil(pending / blocks))),
            batch_format="pyarrow",
            # one batch per actor at a time, so a small job is spread over every actor
            compute=ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1),
            num_cpus=threads,
            num_gpus=config.tensor_parallel_size if gpus else 0,
        )
        used: set[str] = set()
        for batch in data.iter_batches(batch_size=shard_size, batch_format="pyarrow"):
            # Ray may re-run a batch after an actor failure; the driver commits each row id once regardless.
            rows = [row for row in batch.to_pylist() if row["row_id"] not in done]
            done.update(row["row_id"] for row in rows)
            used.update(row["worker"] for row in rows)
            sink_items = [
                (Sentence(r["note_id"], r["sentence_index"], r["char_start"], r["char_end"], r["text"]),
                 r["row_id"], r["seed"], _result(r))
                for r in rows
            ]
            sink.commit(sink_items)
    except Exception as exc:
        if isinstance(exc, FactoryError):
            raise
        raise FactoryError(f"Ray labelling failed: {type(exc).__name__}: {str(exc).strip().splitlines()[0][:300]}") from exc
    finally:
        ray.kill(allocator)
    stats.workers_used = sorted(used)
    stats.seconds = time.perf_counter() - started - stats.engine_start_seconds
    shutil.rmtree(staging, ignore_errors=True)
    return stats


