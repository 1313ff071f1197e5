"""The strategy that asks no LLM: cosine similarity (the bundled MiniLM) of a sentence to each category's
definition and to its closest gold exemplars, leave-one-out (a gold sentence is never its own exemplar),
turned into a score that is 0.5 exactly at the decision boundary.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from factory.data.rows import Rows, normalise_text
from factory.data.taxonomy import Taxonomy
from factory.engines.base import Request, Result
from factory.stages.call import LLMCall
from factory.stages.context import StageContext
from factory.stages.strategy import NO_CALL, Labelled, Strategy, labels_from_scores

EMBEDDING_MARGIN = 0.02  # categories within this cosine of the best one are labelled too
EMBEDDING_SCALE = 0.02  # cosine difference that moves the embedding score from 0.5 to 0.73
TOP_EXEMPLARS = 3


class EmbeddingStrategy(Strategy):
    """Cosine similarity to each category's definition and to its closest gold exemplars (no LLM)."""

    name = "embedding"
    uses_llm = False

    def __init__(self, taxonomy: Taxonomy, gold: Rows | None = None, embedder=None):
        from factory.engines.embedder import shared_embedder

        self.taxonomy = taxonomy
        self.call = LLMCall(None, None, taxonomy)
        self.embedder = embedder or shared_embedder(None)
        ids = taxonomy.all_ids
        definitions = [f"{taxonomy.get(c).name}: {taxonomy.get(c).definition}" for c in ids]
        self.definition_vectors = self.embedder.embed(definitions)
        gold = gold or Rows()
        self.exemplar_texts = [normalise_text(t) for t in gold.texts]
        self.exemplar_vectors = self.embedder.embed(gold.texts) if len(gold) else np.zeros((0, self.definition_vectors.shape[1]))
        self.exemplar_labels = np.array([[c in labels for c in ids] for labels in gold.labels], dtype=bool).reshape(len(gold), len(ids))
        self.gold_hash = hashlib.sha256("\n".join(sorted(gold.texts)).encode()).hexdigest()

    def identity(self, ctx: StageContext) -> dict:
        return {"encoder_hash": self.embedder.fingerprint, "taxonomy_hash": self.taxonomy.fingerprint,
                "gold": self.gold_hash, "margin": EMBEDDING_MARGIN, "top_exemplars": TOP_EXEMPLARS}

    def row_lineage(self) -> dict:
        return {"engine": "embedding", "model_path": str(self.embedder.path), "model_hash": self.embedder.fingerprint}

    def similarities(self, texts: list[str]) -> np.ndarray:
        """(n, K+1) similarity per category and 'none': max(definition, mean of the top exemplars)."""
        vectors = self.embedder.embed(texts)
        sims = vectors @ self.definition_vectors.T
        if len(self.exemplar_texts):
            to_exemplars = vectors @ self.exemplar_vectors.T
            own = np.array([[normalise_text(t) == e for e in self.exemplar_texts] for t in texts])
            to_exemplars[own] = -np.inf  # leave-one-out: a gold sentence is never its own exemplar
            for j in range(sims.shape[1]):
                column = to_exemplars[:, self.exemplar_labels[:, j]]
                if column.shape[1]:
                    top = -np.sort(-column, axis=1)[:, :TOP_EXEMPLARS]
                    top = np.where(np.isfinite(top), top, np.nan)
                    exemplar_score = np.nan_to_num(np.nanmean(top, axis=1), nan=-1.0)
                    sims[:, j] = np.maximum(sims[:, j], exemplar_score)
        return sims

    def scores(self, sims_row: np.ndarray) -> dict[str, float]:
        """Score 0.5 exactly at the decision boundary: as close to the best category as the margin allows
        and at least as close as 'none'."""
        ids = self.taxonomy.all_ids
        top = float(sims_row.max())
        none = float(sims_row[ids.index(self.taxonomy.none.id)])
        boundary = max(none, top - EMBEDDING_MARGIN)
        return {c: 1 / (1 + math.exp(-(float(sims_row[j]) - boundary + 1e-9) / EMBEDDING_SCALE))
                for j, c in enumerate(ids) if c != self.taxonomy.none.id}

    def priors(self, texts: list[str]) -> list[Labelled]:
        out = []
        for row in self.similarities(texts) if texts else []:
            scores = self.scores(row)
            out.append(Labelled(labels_from_scores(scores, self.taxonomy), scores, result=NO_CALL))
        return out

    def requests(self, text: str, seed: int) -> list[Request]:
        return []

    def outcome(self, text: str, results: list[Result], prior: Labelled | None = None, seed: int = 0) -> Labelled:
        if prior is None:
            raise ValueError("the embedding strategy labels a sentence from its prior")
        return prior
