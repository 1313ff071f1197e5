"""embedding+X: the embedding score and an LLM strategy's vote, fused by a weighted mean and labelled above a
threshold (the weight and threshold are tuned on gold by factory/quality/strategy_eval.py).
"""

from __future__ import annotations

from factory.core.errors import FactoryError
from factory.engines.base import Request, Result, Sampling
from factory.stages.context import StageContext
from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.strategy import Labelled, Strategy, labels_from_scores

# With an equal-weight mean, a 0/1 LLM vote always decides (0.5 + p/2 > 0.5 for any p > 0). At 1/3 the
# vote shifts the embedding's decision boundary instead: a yes needs p > 0.25, a no needs p > 0.75.
LLM_VOTE_WEIGHT = 1 / 3


class CombinedStrategy(Strategy):
    """Weighted mean of the embedding score and the LLM's vote (0/1, or P(yes) / P(true)), labelled above a
    threshold. The weight and threshold are best chosen on gold train (`quality strategies --tune`); the
    defaults (vote weight 1/3, threshold 0.5) are what runs made before tuning used."""

    def __init__(self, embedding: EmbeddingStrategy, llm, weight: float = LLM_VOTE_WEIGHT, threshold: float = 0.5):
        if not (0 <= weight <= 1 and 0 < threshold < 1):
            raise FactoryError(f"combination weight must be in [0, 1] and threshold in (0, 1), got {weight}, {threshold}")
        self.embedding, self.llm = embedding, llm
        self.weight, self.threshold = weight, threshold
        self.taxonomy = embedding.taxonomy
        self.name = f"embedding+{llm.name}"
        self.call = llm.call

    def identity(self, ctx: StageContext) -> dict:
        tuned = {} if (self.weight, self.threshold) == (LLM_VOTE_WEIGHT, 0.5) else {
            "weight": round(self.weight, 4), "threshold": round(self.threshold, 4)}
        return {"embedding": self.embedding.identity(ctx), "llm": self.llm.identity(ctx), **tuned}

    def sampling(self, ctx: StageContext) -> Sampling:
        return self.llm.sampling(ctx)

    def priors(self, texts: list[str]) -> list[Labelled]:
        return self.embedding.priors(texts)

    def requests(self, text: str, seed: int) -> list[Request]:
        return self.llm.requests(text, seed)

    def outcome(self, text: str, results: list[Result], prior: Labelled | None = None, seed: int = 0) -> Labelled:
        if prior is None:
            raise ValueError("a combined strategy needs the embedding prior of the sentence")
        return self.combine([prior], [self.llm.outcome(text, results, None, seed)])[0]

    def combine(self, prior: list[Labelled], votes: list[Labelled], weight: float | None = None,
                threshold: float | None = None) -> list[Labelled]:
        weight = self.weight if weight is None else weight
        threshold = self.threshold if threshold is None else threshold
        out = []
        for p, v in zip(prior, votes, strict=True):
            if not v.ok:
                out.append(v)
                continue
            scores = {c: (1 - weight) * p.scores.get(c, 0.0) + weight * v.scores.get(c, 0.0)
                      for c in self.taxonomy.category_ids}
            out.append(Labelled(labels_from_scores(scores, self.taxonomy, threshold), scores, v.evidence, v.result, v.seed,
                                v.confidence))
        return out
