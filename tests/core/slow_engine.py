"""A model-free engine that behaves like vLLM where a kill test needs it to: it is slow, and it starts
processes of its own.

`SlowEngine` answers like factory.engines.trivial.TrivialEngine (so two runs write the same rows), after a
pause per batch, and serves a small stream window so a stage commits many times. On start it spawns an
"engine core" process, which spawns a "worker", and creates a semaphore-backed Event, which starts
multiprocessing's resource tracker: the three kinds of process vLLM leaves behind when its parent dies
without them dying too. Used as `--engine tests.core.slow_engine:SlowEngine` by tests/core/kill_entry.py.

Environment: FACTORY_SLOW_ENGINE_DELAY (seconds per batch, default 0.1), FACTORY_SLOW_ENGINE_LOG (a file
that gets one line when the engine has started and one per finished batch).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time

from factory.engines.base import EngineConfig, RawOutput, Request, Sampling
from factory.engines.trivial import TrivialEngine


def _log(line: str) -> None:
    path = os.environ.get("FACTORY_SLOW_ENGINE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")


def _worker(stop) -> None:
    stop.wait()


def _engine_core(stop, ready) -> None:
    worker = mp.get_context("spawn").Process(target=_worker, args=(stop,), name="slow-engine-worker")
    worker.start()
    ready.set()
    stop.wait()
    worker.join(5)


class SlowEngine(TrivialEngine):
    name = "slow-trivial"
    stream_window = 3

    def __init__(self, config: EngineConfig | None = None):
        super().__init__(config)
        self.delay = float(os.environ.get("FACTORY_SLOW_ENGINE_DELAY", "0.1"))
        context = mp.get_context("spawn")
        self._stop = context.Event()  # a named semaphore: starts the resource tracker, as vLLM's engine does
        ready = context.Event()
        self._core = context.Process(target=_engine_core, args=(self._stop, ready), name="slow-engine-core")
        self._core.start()
        if not ready.wait(120):  # like vLLM's handshake with its engine core
            raise RuntimeError("the engine core did not start")
        self._batches = 0
        _log(f"started {os.getpid()} core {self._core.pid}")

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        time.sleep(self.delay)
        if not self._core.is_alive():
            raise RuntimeError("the engine core process died")
        raws = super()._generate_raw(requests, schema, sampling)
        self._batches += 1
        _log(f"batch {self._batches} {len(requests)}")
        return raws

    def close(self) -> None:
        if self._core is None:
            return
        self._stop.set()
        self._core.join(5)
        if self._core.is_alive():
            self._core.kill()
        self._core = None
