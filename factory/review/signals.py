"""Why a row is where it is in the review queue: the signals the review command always has.

- **classifier**: the fast TF-IDF classifier (factory.trainer.classifiers, family "tfidf", as `compare`
  builds it) fitted at start-up on the *train* split of the run's gold (`<run>/gold`, or `review --gold`;
  the frozen `split.json`, made now if absent, as `label --gold` does), then scoring every queued row:
  P(category) for each category against its decision threshold. A category where the classifier and the
  LLM's label fall on different sides of the threshold is a disagreement; a probability close to the
  threshold is doubt. A run without gold says so, and the other signals carry the queue.
- **votes**: the self-consistency samples (`<run>/silver_consistency`) where the row was sampled: how many
  of the k samples gave the LLM's label set.
- **LLM confidence**: the mean per-token probability of those samples (`logprob_confidence`) where the engine
  gave log-probabilities; for a row consistency did not sample, the same measure of the label stage's own
  answer (the silver row's `logprob_confidence`).

`why_parts()` turns them into the "why here" line the page shows on every row; it is never empty.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from factory.core.errors import FactoryError
from factory.data.taxonomy import Taxonomy

CLASSIFIER_FAMILY = "tfidf"
NEAR = 0.15  # a probability this close to its threshold is doubt
LOW_CONFIDENCE = 0.8  # logprob confidence below this is doubt


@dataclass
class Classifier:
    """A fitted classifier over the positive categories, and where its training rows came from."""

    model: object
    categories: list[str]
    thresholds: np.ndarray  # one per category
    trained_on: int

    def score(self, texts: list[str]) -> np.ndarray:
        """(n, K) P(category) for each text (the `any_category` output left out)."""
        if not texts:
            return np.zeros((0, len(self.categories)))
        return self.model.predict_proba(texts)[:, :len(self.categories)]


def fit_gold_classifier(gold_dir: Path, taxonomy: Taxonomy, seed: int = 0) -> tuple[Classifier | None, str, str]:
    """(classifier, "", where it came from) fitted on the gold train split, or (None, why there is none in a few
    words for the why-here line, the same at length)."""
    from factory.data.gold import load_gold
    from factory.data.split import load_or_create_split
    from factory.data.store import shard_paths

    gold_dir = Path(gold_dir)
    if not gold_dir.is_dir() or not shard_paths(gold_dir, any_name=True):
        return None, "the run has no gold", f"no gold in {gold_dir}"
    try:
        rows = load_gold(gold_dir, taxonomy)
        split = load_or_create_split(rows, gold_dir, taxonomy)  # never trains on the frozen test split
    except (FactoryError, OSError) as exc:
        return None, "its gold has no usable train split", f"gold in {gold_dir} has no usable train split ({exc})"
    train = rows.subset(split.train_indices(rows))
    where = f"{CLASSIFIER_FAMILY} classifier fitted on {len(train)} gold train sentences of {gold_dir}"
    return fit_classifier(train.texts, train.labels, taxonomy, seed), "", where


def fit_classifier(texts: list[str], labels: list[list[str]], taxonomy: Taxonomy, seed: int = 0) -> Classifier:
    """The why-here classifier fitted on these sentences (the review simulation refits it as rows are reviewed)."""
    from factory.trainer.classifiers import build_model, target_matrix

    ids = taxonomy.category_ids
    model = build_model(CLASSIFIER_FAMILY, ids, seed)
    model.fit(texts, target_matrix(labels, ids))
    return Classifier(model, ids, model.thresholds()[:len(ids)], len(texts))


@dataclass
class ClassifierView:
    """The classifier on one row, as the why-here line tells it: the one category most worth a look."""

    category: str
    probability: float
    threshold: float
    llm_says: bool
    disagreements: list[str]
    margin: float  # the smallest |P - threshold| over the categories

    @property
    def near(self) -> bool:
        return self.margin < NEAR

    def as_json(self) -> dict:
        return {"category": self.category, "probability": round(self.probability, 3),
                "threshold": round(self.threshold, 3), "llm_says": self.llm_says,
                "disagreements": self.disagreements, "margin": round(self.margin, 3)}


def classifier_view(probabilities: np.ndarray, labels: list[str], classifier: Classifier) -> ClassifierView:
    """Disagreement first: the category where the classifier is surest against the LLM; else the category
    whose probability is closest to its threshold, when one is near; else the LLM's least supported label."""
    llm = np.array([c in labels for c in classifier.categories])
    says = probabilities >= classifier.thresholds
    distance = np.abs(probabilities - classifier.thresholds)
    against = np.flatnonzero(says != llm)
    if len(against):
        j = int(against[np.argmax(distance[against])])
    elif distance.min() < NEAR or not llm.any():
        j = int(np.argmin(distance))
    else:
        j = int(np.flatnonzero(llm)[np.argmin(probabilities[llm])])
    return ClassifierView(classifier.categories[j], float(probabilities[j]), float(classifier.thresholds[j]),
                          bool(llm[j]), [classifier.categories[i] for i in against], float(distance.min()))


def classifier_doubt(view: ClassifierView) -> float:
    """2 for a disagreement, plus up to 1 the closer a probability is to its threshold."""
    return (2.0 if view.disagreements else 0.0) + max(0.0, 1.0 - view.margin / NEAR)


def votes_for_labels(vote: dict, labels: list[str]) -> tuple[int, int]:
    """(samples that gave exactly `labels`, samples asked) of one consistency row."""
    samples = int(vote.get("samples") or vote.get("valid_samples") or 0)
    try:
        sampled = json.loads(vote.get("sampled_labels") or "null")
    except (TypeError, json.JSONDecodeError):
        sampled = None
    if isinstance(sampled, list):
        wanted = sorted(labels)
        return sum(1 for s in sampled if isinstance(s, list) and sorted(s) == wanted), samples or len(sampled)
    agreement = float(vote.get("agreement") or 0.0)  # older rows: the majority's share is the LLM's when it agrees
    return (round(agreement * samples) if vote.get("silver_agrees") else 0), samples


def classifier_part(view: ClassifierView | None, missing: str, name) -> str:
    if view is None:
        return f"no classifier: {missing}"
    llm = "yes" if view.llm_says else "no"
    others = len(view.disagreements) - 1 if view.disagreements else 0
    more = f", {others} more disagreement{'s' if others > 1 else ''}" if others > 0 else ""
    return f"classifier {view.probability:.2f} vs LLM {llm} ({name(view.category)}{more})"


def why_parts(view: ClassifierView | None, missing: str, vote: dict | None, labels: list[str], name,
              no_votes: str | None, label_confidence: float | None = None) -> list[str]:
    """The why-here line of one row, as its parts (the classifier's part is always there); `no_votes` is what
    to say of a row without a consistency vote (None: say nothing, as for bronze); `label_confidence` is the
    LLM's confidence when it labelled the row, shown where no consistency vote gives one."""
    parts = [classifier_part(view, missing, name)]
    confidence = None
    if vote is not None:
        agree, k = votes_for_labels(vote, labels)
        majority = list(vote.get("majority_labels") or [])
        differs = "" if vote.get("silver_agrees") else f", majority {', '.join(name(m) for m in majority) or '—'}"
        parts.append(f"{agree} of {k} votes{differs}")
        confidence = vote.get("logprob_confidence")
    elif no_votes:
        parts.append(no_votes)
    if confidence is not None:
        parts.append(f"LLM confidence {float(confidence):.2f}")
    elif label_confidence is not None:
        parts.append(f"LLM confidence {float(label_confidence):.2f} when labelling")
    return parts
