"""What a labelling strategy is: which requests label one sentence (`requests`), and how their answers, or a
score computed without an LLM (`priors`), become labels and per-category scores in [0, 1] (`outcome`,
`Labelled`). The label stage (factory/stages/label.py) runs any strategy; factory/stages/strategies.py names
and builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from factory.data.taxonomy import Taxonomy
from factory.engines.base import Request, Result, Sampling
from factory.stages.call import LLMCall
from factory.stages.context import StageContext
from factory.stages.prompts import PromptPair

NO_CALL = Result(None, "", "stop", 0, 0, 1)  # lineage of a sentence labelled without an LLM call


@dataclass
class Labelled:
    """One sentence's outcome: labels (None when the LLM output failed) and per-category scores in [0, 1]."""

    labels: list[str] | None
    scores: dict[str, float] = field(default_factory=dict)
    evidence: str = ""
    result: Result = field(default_factory=lambda: NO_CALL)  # the call it came from (merged, for several)
    seed: int = 0
    confidence: float | None = None  # the LLM's confidence in its answers (logprobs; set by the label stage)

    @property
    def ok(self) -> bool:
        return self.labels is not None


def labels_from_scores(scores: dict[str, float], taxonomy: Taxonomy, threshold: float = 0.5) -> list[str]:
    """Categories scored above the threshold; 'none' alone when there is none."""
    positives = [cid for cid in taxonomy.category_ids if scores.get(cid, 0.0) > threshold]
    return positives or [taxonomy.none.id]


def merge_results(results: list[Result]) -> Result:
    """One lineage record for the calls that labelled one sentence (per-category makes several)."""
    failed = next((r for r in results if not r.ok), None)
    return Result(
        parsed=None, raw=failed.raw if failed else "", finish_reason=failed.finish_reason if failed else "stop",
        prompt_tokens=sum(r.prompt_tokens for r in results), completion_tokens=sum(r.completion_tokens for r in results),
        attempts=max((r.attempts for r in results), default=1), error=failed.error if failed else None)


class Strategy:
    """What every strategy shares: the key scheme, sampling, priors and labelling a list of texts."""

    name = "strategy"
    uses_llm = True
    taxonomy: Taxonomy
    # The LLM call of one sentence (prompt, schema, taxonomy): the label stage's identity and row lineage
    # come from it. A strategy that asks no LLM declares a call with neither prompt nor schema.
    call: LLMCall

    @property
    def schema(self) -> dict | None:
        return self.call.schema

    @property
    def prompts(self) -> PromptPair | None:
        return self.call.prompts

    @property
    def key_task(self) -> str:
        return f"label:{self.name}"

    def identity(self, ctx: StageContext) -> dict:
        return self.call.identity(ctx)

    def requests(self, text: str, seed: int) -> list[Request]:
        raise NotImplementedError

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        raise NotImplementedError

    def row_lineage(self) -> dict:
        """Lineage fields a strategy that asks no LLM records in place of the engine's."""
        return {}

    def stage_identity(self, ctx: StageContext) -> dict:
        """What keys a silver row: the strategy's identity and its name."""
        return {**self.identity(ctx), "strategy": self.name}

    def sampling(self, ctx: StageContext) -> Sampling:
        # Log-probabilities of the chosen tokens are the LLM's own confidence, recorded on each silver row (the
        # review queue and the calibration report need a signal when consistency has not run). They change
        # no output, and the identity is built from ctx.sampling, so adding them rekeys nothing.
        return replace(ctx.sampling, logprobs=ctx.sampling.logprobs or 1)

    def priors(self, texts: list[str]) -> list:
        """Per-sentence scores computed for a whole chunk at once (the embedding prior); None otherwise."""
        return [None] * len(texts)
