"""Data parallelism on one machine: N engine replicas in worker processes behind the one Engine interface.

Each replica is a full engine (vLLM with its own tensor-parallel group, or any other backend) in its own
process; a batch is cut into N contiguous parts, generated concurrently, and reassembled in order. Per-
request seeds make each output independent of which replica produced it, so rows and row ids are the
same as with one engine. On CPU each replica gets its own cores (vLLM-CPU binds its OpenMP threads);
on CUDA each gets its own `tensor_parallel_size` GPUs.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from dataclasses import asdict

from factory.engines import load_engine
from factory.engines.base import Engine, EngineConfig, RawOutput, Request, Result, Sampling
from factory.core.errors import FactoryError


def split_evenly(items: list, parts: int) -> list[list]:
    """Contiguous parts whose sizes differ by at most one (empty parts at the end when items < parts)."""
    size, extra = divmod(len(items), parts)
    out, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        out.append(items[start:end])
        start = end
    return out


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


def _visible_gpus() -> int:
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except ImportError:
        return 0


class ReplicaEngine(Engine):
    """`replicas` copies of engine `engine_name`, each in a spawned process."""

    def __init__(self, engine_name: str, config: EngineConfig, replicas: int):
        self.name = engine_name
        self.config = config
        context = mp.get_context("spawn")  # vLLM and CUDA cannot be forked
        cores = sorted(os.sched_getaffinity(0))
        gpus = _visible_gpus() if engine_name == "vllm" else 0
        self._workers = []
        self._used: set[int] = set()
        for index in range(replicas):
            env = replica_environment(index, replicas, config, cores, gpus)
            parent, child = context.Pipe()
            # not a daemon: vLLM starts its own engine-core process inside each replica
            process = context.Process(target=_serve, args=(child, engine_name, asdict(config), env), daemon=False)
            process.start()
            self._workers.append((process, parent))
        started = [self._receive(conn) for _, conn in self._workers]  # replicas load concurrently; wait for all
        failed = [payload for status, payload in started if status == "error"]
        if failed:
            self.close()
            raise FactoryError(f"engine replica failed: {failed[0]}")

    @staticmethod
    def _receive(conn) -> tuple[str, object]:
        try:
            return conn.recv()
        except EOFError:
            return "error", "the replica process exited unexpectedly"

    def _expect(self, conn):
        status, payload = self._receive(conn)
        if status == "error":
            raise FactoryError(f"engine replica failed: {payload}")
        return payload

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        raise NotImplementedError  # generate() is overridden: each replica validates and retries itself

    def generate(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[Result]:
        parts = split_evenly(requests, len(self._workers))
        busy = []
        for index, ((_, conn), part) in enumerate(zip(self._workers, parts, strict=True)):
            if part:
                conn.send((part, schema, sampling))
                busy.append(conn)
                self._used.add(index)
        results: list[Result] = []
        for conn in busy:
            results.extend(self._expect(conn))
        return results

    def workers_used(self) -> list[str]:
        return [f"replica-{index}" for index in sorted(self._used)]

    def close(self) -> None:
        workers, self._workers = getattr(self, "_workers", []), []
        for process, conn in workers:
            try:
                conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        for process, _ in workers:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
