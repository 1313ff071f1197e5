"""embedding+X: the weighted mean of the embedding score and the LLM's vote."""

import pytest

from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.prompt_strategies import PerCategoryStrategy
from factory.stages.score_fusion import CombinedStrategy
from factory.stages.strategy import Labelled

def test_combination_weighs_prior_and_votes(taxonomy):
    embedding = object.__new__(EmbeddingStrategy)
    embedding.taxonomy = taxonomy
    combined = CombinedStrategy(embedding, PerCategoryStrategy(taxonomy))
    prior = [Labelled(["cognitive_impairment"], {"cognitive_impairment": 0.9, "notice_by_others": 0.2})]
    votes = [Labelled(["notice_by_others"], {"cognitive_impairment": 0.3, "notice_by_others": 0.9})]
    (merged,) = combined.combine(prior, votes)
    assert merged.labels == ["cognitive_impairment"]
    assert merged.scores["cognitive_impairment"] == pytest.approx(2 / 3 * 0.9 + 1 / 3 * 0.3)
    assert merged.scores["notice_by_others"] == pytest.approx(2 / 3 * 0.2 + 1 / 3 * 0.9)

def test_a_binary_vote_moves_the_boundary_but_does_not_override_the_prior(taxonomy):
    embedding = object.__new__(EmbeddingStrategy)
    embedding.taxonomy = taxonomy
    combined = CombinedStrategy(embedding, PerCategoryStrategy(taxonomy))
    cid = "cognitive_impairment"
    cases = [(0.9, 0.0, True), (0.6, 0.0, False), (0.3, 1.0, True), (0.2, 1.0, False)]
    for prior_score, vote, kept in cases:
        (merged,) = combined.combine([Labelled([cid], {cid: prior_score})], [Labelled([cid], {cid: vote})])
        assert (cid in merged.labels) is kept, (prior_score, vote)
