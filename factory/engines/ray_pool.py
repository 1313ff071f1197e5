"""Engine replicas as Ray actors: the scale-out of every stage that calls `ctx.engine` (synthesis first).

`label --ray` runs as a Ray Data pipeline (factory/ray_label.py). Synthesis plans its requests in waves
(each wave asks only for what the categories still lack), so it keeps its single-process loop and hands
each wave to this engine: a pool of actors, one engine each, started once for the whole job on the same
Ray cluster, with the same core binding, loopback-only cluster and network guard as the label pipeline.
"""

from __future__ import annotations

import os
from dataclasses import asdict

from factory.engines import load_engine
from factory.engines.base import Engine, EngineConfig, Request, Result, Sampling
from factory.errors import FactoryError
from factory.parallel import split_evenly
from factory.ray_label import ENGINE_START_TIMEOUT_S, bind_actor_cores, core_allocator, ray_environment, start_ray, stop_ray


class EngineActor:
    """A Ray actor holding one engine (bound to its own cores on CPU) for the whole job."""

    def __init__(self, engine: str, config: dict, threads: int, bind_cores: bool):
        if bind_cores:
            bind_actor_cores(threads)
        self.engine = load_engine(engine, EngineConfig(**config))
        self.worker = f"{os.uname().nodename}:{os.getpid()}"

    def generate(self, requests: list[Request], schema: dict, sampling: Sampling) -> tuple[str, list[Result]]:
        return self.worker, self.engine.generate(requests, schema, sampling)

    def close(self) -> None:
        self.engine.close()


class RayEngine(Engine):
    """`workers` engine actors on a Ray cluster behind the one Engine interface: each `generate` call is
    cut into contiguous parts, one per actor, and reassembled in order. The driver keeps committing shards
    and holding the run lock, so any stage (synthesis among them) keeps its exactly-once contract; per-
    request seeds make each output independent of the actor that produced it."""

    name = "ray"

    def __init__(self, engine: str, config: EngineConfig, workers: int, address: str | None = None):
        ray_environment(address)
        import ray

        cores = len(os.sched_getaffinity(0))
        threads = max(1, cores // workers)
        start_ray(cpus=workers * threads, address=address)
        gpus = ray.cluster_resources().get("GPU", 0)
        self._allocator = core_allocator()
        actor = ray.remote(EngineActor).options(num_cpus=threads, num_gpus=config.tensor_parallel_size if gpus else 0)
        self._actors = [actor.remote(engine, asdict(config), threads, not gpus) for _ in range(workers)]
        self._used: set[str] = set()
        try:  # every engine up before the first request, so a job spreads over all of them
            ray.get([a.__ray_ready__.remote() for a in self._actors], timeout=ENGINE_START_TIMEOUT_S)
        except Exception as exc:
            self.close()
            raise FactoryError(f"Ray engine actor failed to start: {_last_line(exc)}") from None

    def _generate_raw(self, requests, schema, sampling):
        raise NotImplementedError  # generate() is overridden: each actor validates and retries itself

    def generate(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[Result]:
        import ray

        parts = split_evenly(requests, len(self._actors))
        futures = [a.generate.remote(part, schema, sampling) for a, part in zip(self._actors, parts, strict=True) if part]
        results: list[Result] = []
        try:
            for worker, part_results in ray.get(futures):
                self._used.add(worker)
                results.extend(part_results)
        except ray.exceptions.RayError as exc:
            raise FactoryError(f"Ray engine actor failed: {_last_line(exc)}") from None
        return results

    def workers_used(self) -> list[str]:
        return sorted(self._used)

    def close(self) -> None:
        import ray

        actors, self._actors = getattr(self, "_actors", []), []
        for actor in actors:
            try:
                ray.get(actor.close.remote(), timeout=60)
            except Exception:  # noqa: BLE001 - an actor that died has nothing left to close
                pass
            ray.kill(actor)
        if getattr(self, "_allocator", None) is not None:
            ray.kill(self._allocator)
            self._allocator = None
        stop_ray()


def _last_line(exc: Exception) -> str:
    """Ray wraps an actor's error in its own traceback text: its last line is the cause."""
    lines = str(exc).strip().splitlines() or [""]
    return f"{type(exc).__name__}: {lines[-1][:300]}"
