"""The context of a stage that asks no LLM (dedup, the PHI scan, the label-noise flags): the run, and no engine.

`run_stage` reads from a context only its run, its commit settings, and (for the manifest) what engine
did the work; these stages have none, so their manifest entries carry their own summary and nothing of an
engine.
"""

from __future__ import annotations

from dataclasses import dataclass

from factory.core.errors import FactoryError
from factory.data.run_folder import Run

# A stage without an LLM commits one shard per this many rows (or per commit_seconds): a whole table of a
# usual run is one shard, and a kill still keeps every finished shard.
LOCAL_COMMIT_ROWS = 10_000


@dataclass
class LocalContext:
    run: Run
    commit_rows: int | None = LOCAL_COMMIT_ROWS
    commit_seconds: float = 30.0
    seed: int = 0
    sampling: None = None

    @property
    def engine(self):
        raise FactoryError("this stage asks no LLM: it has no engine")

    def engine_workers(self) -> list[str]:
        return []

    def manifest_info(self) -> dict:
        return {}
