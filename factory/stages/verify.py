"""Verify: a second, constrained LLM pass that judges each silver label set and each bronze sentence
against the category definitions.

Verdicts go to side tables `<run>/silver_check/` and `<run>/bronze_check/` keyed by the judged row's
`row_id` (docs/data-contract.md). Silver and bronze are never rewritten: a rejected row stays where it
is, and its verdict and reason sit beside it for filters (`compare --drop-rejected`) and the report.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.side_tables import SideTable
from factory.data.store import LINEAGE_SCHEMA
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Request, Result
from factory.stages.call import LLMCall, answer
from factory.stages.context import StageContext, StageStats, request_seed
from factory.stages.prompts import PromptPair
from factory.stages.runner import LLMTask, Lineage, Unit, judged_rows, run_stage

VERDICTS = ("accept", "reject")  # distinct first tokens: the constraint does not favour one
MAX_REASON_CHARS = 120
CHECKED_DATASETS = ("silver", "bronze")

CHECK_SCHEMA = {
    "row_id": pl.String,  # the judged silver/bronze row
    "check_key": pl.String,  # content key of this verdict (judged text + labels + verifier identity)
    "source": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.String),
    "verdict": pl.String,
    "reason": pl.String,
    **LINEAGE_SCHEMA,
}


def check_schema() -> dict:
    """A bounded reason, then the verdict (an enum); nothing else is allowed. The reason comes first: with
    the verdict first a small model commits to it before reading what it wrote (Qwen2.5-1.5B rejected 194 of
    200 bronze sentences, most of them plainly on category, with the verdict first)."""
    return {
        "title": "LabelCheck",
        "type": "object",
        "properties": {
            "reason": {"type": "string", "minLength": 1, "maxLength": MAX_REASON_CHARS},
            "verdict": {"type": "string", "enum": list(VERDICTS)},
        },
        "required": ["reason", "verdict"],
        "additionalProperties": False,
    }


def _check_dataset(dataset: str) -> None:
    if dataset not in CHECKED_DATASETS:
        raise FactoryError(f"check covers silver and bronze, not {dataset!r}")


class CheckTask(LLMTask):
    """Judge every given row (`row_id`, `source`, `text`, `labels`) of one dataset that has no verdict yet for
    its current text and labels; `of_run` judges a run's silver or bronze."""

    name = "check"
    key_column = "check_key"
    row_schema = CHECK_SCHEMA

    def __init__(self, dataset: str, taxonomy: Taxonomy, judged: list[dict], prompts: PromptPair | None = None):
        _check_dataset(dataset)
        self.dataset, self.taxonomy, self.judged = dataset, taxonomy, judged
        self.stage = f"{dataset}_check"
        self.title = f"check ({dataset})"
        self.call = LLMCall(prompts or PromptPair("check"), check_schema(), taxonomy)
        self._system_context = {"categories": taxonomy.categories, "none_category": taxonomy.none}

    @classmethod
    def of_run(cls, run_dir: Path, dataset: str, taxonomy: Taxonomy, limit: int | None = None) -> CheckTask:
        _check_dataset(dataset)  # before the run folder is read
        return cls(dataset, taxonomy, judged_rows(run_dir, dataset, ("row_id", "source", "text", "labels"), limit))

    def chat(self, text: str, labels: list[str], purpose: str) -> list[dict[str, str]]:
        categories = [self.taxonomy.get(label) for label in labels]
        return self.call.chat(self._system_context, {"sentence": text, "labels": categories, "purpose": purpose})

    def total(self) -> int:
        return len(self.judged)

    def units(self, ctx: StageContext, done: set[str]) -> Iterator[Unit]:
        identity = self.identity(ctx)
        for row in self.judged:
            key = self.unit_key(identity, row_id=row["row_id"], text=row["text"], labels=list(row["labels"]))
            chat = self.chat(row["text"], list(row["labels"]), self.dataset)
            yield Unit(key, row, [Request(chat, request_seed(ctx.seed, key))])

    def rows(self, unit: Unit, results: list[Result], lineage: Lineage) -> tuple[list[dict], list[dict]]:
        result, record = results[0], lineage(unit.requests[0], results[0])
        if not result.ok:
            return [], [self.failure_row(self.name, unit.key, unit.item["text"], result, record)]
        judged, parsed = unit.item, answer(result)
        return [{"row_id": judged["row_id"], "check_key": unit.key, "source": judged["source"], "text": judged["text"],
                 "labels": list(judged["labels"]), "verdict": parsed["verdict"], "reason": parsed["reason"],
                 **record}], []


def run_check(run_dir: Path, dataset: str, taxonomy: Taxonomy, ctx: StageContext, limit: int | None = None,
              shard_size: int | None = None) -> StageStats:
    return run_stage(CheckTask.of_run(run_dir, dataset, taxonomy, limit), ctx, commit_rows=shard_size)


def current_verdicts(run_dir: Path, dataset: str) -> pl.DataFrame | None:
    """One verdict per row whose text and labels are unchanged since it was judged (the latest wins)."""
    return SideTable(run_dir, dataset, "check").current()
