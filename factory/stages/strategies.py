"""Labelling strategies for data-to-label, and their measurement against gold.

Each strategy says which requests label one sentence (`requests`) and how their answers become labels
(`outcome`; factory/stages/strategy.py); the label stage (factory/stages/label.py) runs any of them through the
one stage runner. The LLM strategies live in prompt_strategies.py, the embedding score in
embedding_strategy.py and the fusion of both in score_fusion.py; this module names and builds them.

- json: one constrained JSON multi-label call per sentence (the default).
- checklist: one constrained JSON call per sentence answering true/false for every category in turn (no
  category can be skipped by stopping early); P(true) per category from the token log-probabilities.
- fewshot: the same as json, with gold examples in the prompt, rotated per sentence and never the sentence itself.
- per-category: one constrained yes/no call per category; P(yes) from the token log-probabilities where
  the engine returns them. The sentence comes before the category in the prompt, so the 9 calls of a
  sentence share their prefix (vLLM's prefix cache computes it once).
- embedding: no LLM: cosine similarity (bundled MiniLM) of the sentence to each category's definition
  and to gold exemplars (leave-one-out: a sentence is never its own exemplar).
- embedding+per-category, embedding+json: a weighted mean of the embedding score and the LLM vote
  (the vote weighs 1/3, so it moves the embedding's decision boundary rather than overriding it).

Their measurement against gold lives in factory/quality/strategy_eval.py.
"""

from __future__ import annotations

from factory.core.errors import FactoryError
from factory.data.rows import Rows
from factory.data.taxonomy import Taxonomy
from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.prompt_strategies import (FEWSHOT_SHOTS, ChecklistStrategy, FewShotStrategy, JsonStrategy,
                                              Labeler, PerCategoryStrategy, answer_schema, checklist_examples,
                                              checklist_schema, true_probabilities, yes_probability)
from factory.stages.score_fusion import LLM_VOTE_WEIGHT, CombinedStrategy
from factory.stages.strategy import Labelled, Strategy, labels_from_scores

__all__ = ["STRATEGIES", "LLM_STRATEGIES", "NEEDS_GOLD", "build_strategy", "Strategy", "Labelled", "labels_from_scores",
           "Labeler", "JsonStrategy", "FewShotStrategy", "PerCategoryStrategy", "ChecklistStrategy", "EmbeddingStrategy",
           "CombinedStrategy", "FEWSHOT_SHOTS", "answer_schema", "checklist_examples", "checklist_schema",
           "true_probabilities", "yes_probability"]

STRATEGIES = ("json", "checklist", "fewshot", "per-category", "embedding", "embedding+per-category", "embedding+json",
              "embedding+checklist")
LLM_STRATEGIES = ("json", "checklist", "fewshot", "per-category")
NEEDS_GOLD = ("fewshot",)


def build_strategy(name: str, taxonomy: Taxonomy, gold: Rows | None = None, weight: float | None = None,
                   threshold: float | None = None) -> Strategy:
    if name not in STRATEGIES:
        raise FactoryError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if name in NEEDS_GOLD and (gold is None or not len(gold)):
        raise FactoryError(f"strategy {name} draws its examples from gold: pass --gold PATH")
    if (weight is not None or threshold is not None) and not name.startswith("embedding+"):
        raise FactoryError(f"--combine-weight and --combine-threshold apply to embedding+X strategies, not {name}")
    if name == "json":
        return JsonStrategy(taxonomy)
    if name == "fewshot":
        assert gold is not None  # checked above: few-shot needs gold
        return FewShotStrategy(taxonomy, gold)
    if name == "per-category":
        return PerCategoryStrategy(taxonomy)
    if name == "checklist":
        return ChecklistStrategy(taxonomy)
    embedding = EmbeddingStrategy(taxonomy, gold)
    if name == "embedding":
        return embedding
    return CombinedStrategy(embedding, build_strategy(name.split("+", 1)[1], taxonomy, gold),
                            LLM_VOTE_WEIGHT if weight is None else weight, 0.5 if threshold is None else threshold)
