"""Engines kept warm across the stages of one recipe run.

Each LLM stage starts its engine on first use and closes it at its end. Run alone that is right, but a
recipe runs label, synthesize, check and consistency back to back on the same model with the same engine
settings, and on 2 CPU cores each start of a 1.5B model costs about a minute. Inside `keep_warm()` a stage
borrows the engine a previous stage started with the same settings; closing a borrowed engine does
nothing, and the engines are closed when the block ends (also on an error or an interrupt) or when
`close_all()` says no stage ahead needs one. Outputs do not depend on it: every request carries its own
seed, and the identity of a row never includes the engine instance.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager

from factory.engines.base import Engine


class Borrowed:
    """An engine lent to one stage: everything goes to the warm engine except `close`."""

    def __init__(self, engine: Engine):
        self._warm_engine = engine

    def __getattr__(self, name: str):
        return getattr(self._warm_engine, name)

    def close(self) -> None:
        """The lender closes it, when the recipe no longer needs it."""


class WarmEngines:
    def __init__(self) -> None:
        self._engines: dict[Hashable, Engine] = {}

    def borrow(self, key: Hashable, start: Callable[[], Engine]) -> Borrowed:
        if key not in self._engines:
            self.close_all()  # one model in memory at a time: a stage with other settings replaces it
            self._engines[key] = start()
        return Borrowed(self._engines[key])

    def close_all(self) -> None:
        engines, self._engines = list(self._engines.values()), {}
        for engine in engines:
            engine.close()


_active: WarmEngines | None = None


@contextmanager
def keep_warm() -> Iterator[WarmEngines]:
    global _active
    if _active is not None:  # nested recipe: the outer block owns the engines
        yield _active
        return
    _active = WarmEngines()
    try:
        yield _active
    finally:
        warm, _active = _active, None
        warm.close_all()


def start_or_borrow(key: Hashable, start: Callable[[], Engine]):
    """A new engine outside `keep_warm()`; inside it, the warm engine with these settings."""
    return start() if _active is None else _active.borrow(key, start)
