"""Labelling strategies for data-to-label, and their measurement against gold.

Each strategy says which requests label one sentence (`requests`) and how their answers become labels
(`outcome`); the label stage (factory/stages/label.py) runs any of them through the one stage runner.

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

import hashlib
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np

from factory.data.rows import Rows, normalise_text
from factory.engines.base import Request, Result
from factory.core.errors import FactoryError
from factory.data.store import content_key, schema_hash
from factory.data.taxonomy import Taxonomy, label_schema
from factory.engines.base import Sampling
from factory.stages.context import StageContext, request_seed
from factory.core.paths import PROMPTS_DIR
from factory.stages.prompts import PromptPair

STRATEGIES = ("json", "checklist", "fewshot", "per-category", "embedding", "embedding+per-category", "embedding+json",
              "embedding+checklist")
LLM_STRATEGIES = ("json", "checklist", "fewshot", "per-category")
NEEDS_GOLD = ("fewshot",)
ANSWERS = ("yes", "no")
EMBEDDING_MARGIN = 0.02  # categories within this cosine of the best one are labelled too
EMBEDDING_SCALE = 0.02  # cosine difference that moves the embedding score from 0.5 to 0.73
TOP_EXEMPLARS = 3
PER_CATEGORY_LOGPROBS = 5
_LETTERS = re.compile(r"[^a-z]")


@dataclass
class Labelled:
    """One sentence's outcome: labels (None when the LLM output failed) and per-category scores in [0, 1]."""

    labels: list[str] | None
    scores: dict[str, float] = field(default_factory=dict)
    evidence: str = ""
    result: Result | None = None
    seed: int = 0

    @property
    def ok(self) -> bool:
        return self.labels is not None


def labels_from_scores(scores: dict[str, float], taxonomy: Taxonomy, threshold: float = 0.5) -> list[str]:
    """Categories scored above the threshold; 'none' alone when there is none."""
    positives = [cid for cid in taxonomy.category_ids if scores.get(cid, 0.0) > threshold]
    return positives or [taxonomy.none.id]


def _merge_results(results: list[Result]) -> Result:
    """One lineage record for the calls that labelled one sentence (per-category makes several)."""
    failed = next((r for r in results if not r.ok), None)
    return Result(
        parsed=None, raw=failed.raw if failed else "", finish_reason=failed.finish_reason if failed else "stop",
        prompt_tokens=sum(r.prompt_tokens for r in results), completion_tokens=sum(r.completion_tokens for r in results),
        attempts=max((r.attempts for r in results), default=1), error=failed.error if failed else None)


EXAMPLES_PER_CATEGORY = 1
FEWSHOT_SHOTS = 8  # nearest gold sentences shown per sentence
_NO_CALL = Result(None, "", "stop", 0, 0, 1)  # lineage of a sentence labelled without an LLM call


class Labeler:
    """Prompt, schema and identity of the json labelling call (also what self-consistency samples)."""

    task = "label"

    def __init__(self, taxonomy: Taxonomy, prompts: PromptPair | None = None):
        self.taxonomy = taxonomy
        self.prompts = prompts or PromptPair("label")
        self.schema = label_schema(taxonomy)
        self.schema_hash = schema_hash(self.schema)
        self._system_context = {
            "categories": taxonomy.categories,
            "none_category": taxonomy.none,
            "examples_per_category": EXAMPLES_PER_CATEGORY,
        }

    def chat(self, text: str) -> list[dict[str, str]]:
        return self.prompts.render(self._system_context, {"sentence": text})

    def key(self, text: str, ctx: StageContext) -> str:
        return content_key(task=self.task, text=text, **self.identity(ctx))

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint)


class Strategy:
    """What every strategy shares: the key scheme, sampling, priors and labelling a list of texts."""

    name = "strategy"
    uses_llm = True
    schema: dict | None = None
    schema_hash = ""
    prompts: PromptPair | None = None

    @property
    def key_task(self) -> str:
        return f"label:{self.name}"

    def stage_identity(self, ctx: StageContext) -> dict:
        """What keys a silver row: the strategy's identity and its name."""
        return {**self.identity(ctx), "strategy": self.name}

    def sampling(self, ctx: StageContext) -> Sampling:
        return ctx.sampling

    def priors(self, texts: list[str]) -> list:
        """Per-sentence scores computed for a whole chunk at once (the embedding prior); None otherwise."""
        return [None] * len(texts)

    def label(self, texts: list[str], ctx: StageContext | None = None) -> list[Labelled]:
        """Label `texts` in one batch (strategy evaluation on gold); the stage runner is for silver."""
        seeds = [request_seed(ctx.seed if ctx else 0, content_key(task=self.key_task, text=t)) for t in texts]
        priors = self.priors(texts)  # before the requests, as in the label stage (few-shot embeds the chunk here)
        per_text = [self.requests(t, s) for t, s in zip(texts, seeds)]
        flat = [r for requests in per_text for r in requests]
        results = ctx.engine.generate(flat, self.schema, self.sampling(ctx)) if flat else []
        out, start = [], 0
        for text, requests, prior, seed in zip(texts, per_text, priors, seeds, strict=True):
            out.append(self.outcome(text, results[start:start + len(requests)], prior, seed))
            start += len(requests)
        return out


class JsonStrategy(Strategy):
    name = "json"

    def __init__(self, taxonomy: Taxonomy, labeler: Labeler | None = None):
        self.taxonomy = taxonomy
        self.labeler = labeler or Labeler(taxonomy)
        self.prompts, self.schema, self.schema_hash = self.labeler.prompts, self.labeler.schema, self.labeler.schema_hash

    @property
    def key_task(self) -> str:
        return "label"  # the default strategy's keys predate the others: kept, so old runs resume

    def stage_identity(self, ctx: StageContext) -> dict:
        return self.identity(ctx)

    def identity(self, ctx: StageContext) -> dict:
        return self.labeler.identity(ctx)

    def chat(self, text: str) -> list[dict[str, str]]:
        return self.labeler.chat(text)

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.chat(text), seed)]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        result = results[0]
        if not result.ok:
            return Labelled(None, result=result, seed=seed)
        labels = self.taxonomy.labels_from_choices(result.parsed["labels"])
        return Labelled(labels, {c: float(c in labels) for c in self.taxonomy.category_ids},
                        self.evidence(result.parsed["evidence"], text), result, seed)

    def evidence(self, evidence: str, text: str) -> str:
        return evidence


class FewShotStrategy(JsonStrategy):
    """JSON labelling with the gold sentences most similar to the one at hand as annotated examples (cosine
    of sentence embeddings), never the sentence itself; the most similar example comes last, nearest the
    sentence. Similar sentences carry the conventions that matter (which pairs of categories co-occur, that a
    denied symptom is 'none') better than one fixed example per category."""

    name = "fewshot"

    def __init__(self, taxonomy: Taxonomy, gold: Rows, per_category: int = 1, shots: int = FEWSHOT_SHOTS, embedder=None):
        from factory.engines.embedder import shared_embedder

        super().__init__(taxonomy)
        self.prompts = PromptPair("fewshot")
        self.per_category = per_category  # kept in the identity of runs made before similarity selection
        self.shots = shots
        self.embedder = embedder or shared_embedder(None)
        self.gold_texts = list(gold.texts)
        self.gold_keys = [normalise_text(t) for t in gold.texts]
        self.gold_choices = [[self.taxonomy.get(lab).choice for lab in labels] for labels in gold.labels]
        self.gold_vectors = self.embedder.embed(self.gold_texts)
        self.gold_hash = hashlib.sha256("\n".join(sorted(gold.texts)).encode()).hexdigest()
        self._system = {"categories": taxonomy.categories, "none_category": taxonomy.none}
        self._queries: dict[str, np.ndarray] = {}

    def identity(self, ctx: StageContext) -> dict:
        return {**ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint), "gold": self.gold_hash,
                "shots": self.shots, "selection": f"nearest:{self.embedder.fingerprint}"}

    def priors(self, texts: list[str]) -> list:
        """Embed a chunk of sentences at once (the label stage calls this before asking for their requests)."""
        if texts:
            self._queries = dict(zip(texts, self.embedder.embed(texts)))
        return [None] * len(texts)

    def examples(self, text: str) -> list[dict]:
        own = normalise_text(text)
        query = self._queries.get(text) if self._queries else None
        similarity = self.gold_vectors @ (query if query is not None else self.embedder.embed([text])[0])
        order = [i for i in np.argsort(-similarity, kind="stable") if self.gold_keys[i] != own][:self.shots]
        return [{"text": self.gold_texts[i], "labels": self.gold_choices[i]} for i in reversed(order)]

    def chat(self, text: str) -> list[dict[str, str]]:
        return self.prompts.render(self._system, {"sentence": text, "examples": self.examples(text)})

    def evidence(self, evidence: str, text: str) -> str:
        """Keep evidence only if it is quoted from this sentence, so no gold example text reaches silver."""
        return evidence if evidence and evidence.lower() in text.lower() else ""


def answer_schema() -> dict:
    return {
        "title": "CategoryDecision",
        "type": "object",
        "properties": {"answer": {"type": "string", "enum": list(ANSWERS)}},
        "required": ["answer"],
        "additionalProperties": False,
    }


def yes_probability(result: Result) -> float:
    """P(yes) / (P(yes) + P(no)) at the answer token, from its top-k log-probabilities; the constrained
    answer itself (1 or 0) when the engine returned none or neither word is among the top k."""
    decided = 1.0 if result.parsed and result.parsed.get("answer") == "yes" else 0.0
    for chosen, _, alternatives in result.logprobs or ():
        word = _LETTERS.sub("", chosen.lower())
        if not word or not ("yes".startswith(word) or "no".startswith(word)):
            continue
        share = _share_of(alternatives, "yes", "no")
        return decided if share is None else share
    return decided


def _share_of(alternatives: dict[str, float], positive: str, negative: str) -> float | None:
    """P(positive) / (P(positive) + P(negative)) among a position's top-k tokens (a token counts for a word
    it begins); None when neither word is among them."""
    def mass(word: str) -> float:
        return sum(math.exp(lp) for t, lp in alternatives.items() if (w := _LETTERS.sub("", t.lower())) and word.startswith(w))

    p, q = mass(positive), mass(negative)
    return p / (p + q) if p + q > 0 else None


class PerCategoryStrategy(Strategy):
    """One yes/no decision per category (no id strings in the constrained choice at all)."""

    name = "per-category"

    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.prompts = PromptPair("percategory")
        self.schema = answer_schema()
        self.schema_hash = schema_hash(self.schema)
        self._system = {"categories": taxonomy.categories}

    def identity(self, ctx: StageContext) -> dict:
        return ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint)

    def chat(self, text: str, category) -> list[dict[str, str]]:
        return self.prompts.render(self._system, {"sentence": text, "category": category})

    def sampling(self, ctx: StageContext) -> Sampling:
        return replace(ctx.sampling, logprobs=PER_CATEGORY_LOGPROBS, max_tokens=min(ctx.sampling.max_tokens, 16))

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.chat(text, c), seed) for c in self.taxonomy.categories]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        merged = _merge_results(results)
        if not merged.ok:
            return Labelled(None, result=merged, seed=seed)
        scores = {c.id: yes_probability(r) for c, r in zip(self.taxonomy.categories, results, strict=True)}
        return Labelled(labels_from_scores(scores, self.taxonomy), scores, "", merged, seed)


CHECKLIST_LOGPROBS = 5
CHECKLIST_EXAMPLES = PROMPTS_DIR / "checklist_examples.jsonl"


def checklist_schema(taxonomy: Taxonomy) -> dict:
    """One required boolean per category, in taxonomy order: the grammar walks the model through each."""
    return {
        "title": "CategoryChecklist",
        "type": "object",
        "properties": {cid: {"type": "boolean"} for cid in taxonomy.category_ids},
        "required": list(taxonomy.category_ids),
        "additionalProperties": False,
    }


def true_probabilities(result: Result, count: int) -> list[float] | None:
    """P(true) / (P(true) + P(false)) at each of the `count` boolean tokens, from their top-k log-probabilities;
    None when the engine returned no log-probabilities or the positions cannot be matched one to one."""
    found = []
    for chosen, _, alternatives in result.logprobs or ():
        word = _LETTERS.sub("", chosen.lower())
        if word not in ("true", "false", "t", "f", "tr", "fal", "fa", "tru", "fals"):
            continue
        share = _share_of(alternatives, "true", "false")
        found.append(float(word.startswith("t")) if share is None else share)
    return found if len(found) == count else None


def checklist_examples(taxonomy: Taxonomy, path=CHECKLIST_EXAMPLES) -> list[dict]:
    """The guideline's multi-label and negated examples (those whose labels this taxonomy has), then one
    example per category from the taxonomy itself."""
    import json

    known = set(taxonomy.all_ids)
    written = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    chosen = [{"text": e["text"], "labels": [c for c in e["labels"] if c != taxonomy.none.id]}
              for e in written if set(e["labels"]) <= known]
    chosen += [{"text": c.examples[0], "labels": [c.id]} for c in taxonomy.categories if c.examples]
    return chosen


class ChecklistStrategy(Strategy):
    """Every category answered true/false in one constrained call; scores are P(true) where logprobs exist."""

    name = "checklist"

    def __init__(self, taxonomy: Taxonomy):
        self.taxonomy = taxonomy
        self.prompts = PromptPair("checklist")
        self.schema = checklist_schema(taxonomy)
        self.schema_hash = schema_hash(self.schema)
        examples = checklist_examples(taxonomy)
        self.examples_hash = hashlib.sha256(repr(examples).encode()).hexdigest()
        self._system = {"categories": taxonomy.categories, "examples": examples}

    def identity(self, ctx: StageContext) -> dict:
        return {**ctx.identity(self.prompts.hash, self.schema_hash, self.taxonomy.fingerprint),
                "examples": self.examples_hash}

    def sampling(self, ctx: StageContext) -> Sampling:
        return replace(ctx.sampling, logprobs=CHECKLIST_LOGPROBS, max_tokens=max(ctx.sampling.max_tokens, 160))

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.prompts.render(self._system, {"sentence": text}), seed)]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        result = results[0]
        if not result.ok:
            return Labelled(None, result=result, seed=seed)
        ids = self.taxonomy.category_ids
        probabilities = true_probabilities(result, len(ids))
        decided = [float(bool(result.parsed.get(cid))) for cid in ids]
        scores = dict(zip(ids, probabilities if probabilities is not None else decided, strict=True))
        return Labelled(labels_from_scores(scores, self.taxonomy), scores, "", result, seed)


# ------------------------------------------------------------------------------------- embedding prior


class EmbeddingStrategy(Strategy):
    """Cosine similarity to each category's definition and to its closest gold exemplars (no LLM)."""

    name = "embedding"
    uses_llm = False

    def __init__(self, taxonomy: Taxonomy, gold: Rows | None = None, embedder=None):
        from factory.engines.embedder import shared_embedder

        self.taxonomy = taxonomy
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
            out.append(Labelled(labels_from_scores(scores, self.taxonomy), scores, result=_NO_CALL))
        return out

    def requests(self, text: str, seed: int) -> list[Request]:
        return []

    def outcome(self, text: str, results: list[Result], prior: Labelled | None = None, seed: int = 0) -> Labelled:
        return prior


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
        self.prompts, self.schema, self.schema_hash = llm.prompts, llm.schema, llm.schema_hash

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
            out.append(Labelled(labels_from_scores(scores, self.taxonomy, threshold), scores, v.evidence, v.result, v.seed))
        return out


def build_strategy(name: str, taxonomy: Taxonomy, gold: Rows | None = None, weight: float | None = None,
                   threshold: float | None = None):
    if name not in STRATEGIES:
        raise FactoryError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    if name in NEEDS_GOLD and (gold is None or not len(gold)):
        raise FactoryError(f"strategy {name} draws its examples from gold: pass --gold PATH")
    if (weight is not None or threshold is not None) and not name.startswith("embedding+"):
        raise FactoryError(f"--combine-weight and --combine-threshold apply to embedding+X strategies, not {name}")
    if name == "json":
        return JsonStrategy(taxonomy)
    if name == "fewshot":
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
