"""The strategies that ask the LLM: json (the default), fewshot, per-category and checklist; their prompts,
schemas, and the per-category probabilities read from token log-probabilities.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import replace

import numpy as np

from factory.core.paths import PROMPTS_DIR
from factory.data.rows import Rows, normalise_text
from factory.data.taxonomy import Taxonomy, label_schema
from factory.engines.base import Request, Result, Sampling
from factory.stages.call import LLMCall, answer
from factory.stages.context import StageContext
from factory.stages.prompts import PromptPair
from factory.stages.strategy import Labelled, Strategy, labels_from_scores, merge_results

ANSWERS = ("yes", "no")
PER_CATEGORY_LOGPROBS = 5
_LETTERS = re.compile(r"[^a-z]")
EXAMPLES_PER_CATEGORY = 1
FEWSHOT_SHOTS = 8  # nearest gold sentences shown per sentence


class JsonStrategy(Strategy):
    """One constrained JSON multi-label call per sentence: the default strategy, and the call self-consistency
    samples k times."""

    name = "json"

    def __init__(self, taxonomy: Taxonomy, prompts: PromptPair | None = None):
        self.taxonomy = taxonomy
        self.call = LLMCall(prompts or PromptPair("label"), label_schema(taxonomy), taxonomy)
        self._system_context = {
            "categories": taxonomy.categories,
            "none_category": taxonomy.none,
            "examples_per_category": EXAMPLES_PER_CATEGORY,
        }

    @property
    def schema(self) -> dict:
        return self.call.constraint

    @property
    def prompts(self) -> PromptPair:
        if self.call.prompts is None:
            raise TypeError("the json call has a prompt pair")
        return self.call.prompts

    @property
    def key_task(self) -> str:
        return "label"  # the default strategy's keys predate the others: kept, so old runs resume

    def stage_identity(self, ctx: StageContext) -> dict:
        return self.identity(ctx)

    def chat(self, text: str) -> list[dict[str, str]]:
        return self.call.chat(self._system_context, {"sentence": text})

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.chat(text), seed)]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        result = results[0]
        if not result.ok:
            return Labelled(None, result=result, seed=seed)
        parsed = answer(result)
        labels = self.taxonomy.labels_from_choices(parsed["labels"])
        return Labelled(labels, {c: float(c in labels) for c in self.taxonomy.category_ids},
                        self.evidence(parsed["evidence"], text), result, seed)

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
        self.call = LLMCall(PromptPair("fewshot"), label_schema(taxonomy), taxonomy)
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
        return {**self.call.identity(ctx), "gold": self.gold_hash,
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
        return self.call.chat(self._system, {"sentence": text, "examples": self.examples(text)})

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
        self.call = LLMCall(PromptPair("percategory"), answer_schema(), taxonomy)
        self._system = {"categories": taxonomy.categories}

    def chat(self, text: str, category) -> list[dict[str, str]]:
        return self.call.chat(self._system, {"sentence": text, "category": category})

    def sampling(self, ctx: StageContext) -> Sampling:
        return replace(ctx.sampling, logprobs=PER_CATEGORY_LOGPROBS, max_tokens=min(ctx.sampling.max_tokens, 16))

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.chat(text, c), seed) for c in self.taxonomy.categories]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        merged = merge_results(results)
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
        self.call = LLMCall(PromptPair("checklist"), checklist_schema(taxonomy), taxonomy)
        examples = checklist_examples(taxonomy)
        self.examples_hash = hashlib.sha256(repr(examples).encode()).hexdigest()
        self._system = {"categories": taxonomy.categories, "examples": examples}

    def identity(self, ctx: StageContext) -> dict:
        return {**self.call.identity(ctx), "examples": self.examples_hash}

    def sampling(self, ctx: StageContext) -> Sampling:
        return replace(ctx.sampling, logprobs=CHECKLIST_LOGPROBS, max_tokens=max(ctx.sampling.max_tokens, 160))

    def requests(self, text: str, seed: int) -> list[Request]:
        return [Request(self.call.chat(self._system, {"sentence": text}), seed)]

    def outcome(self, text: str, results: list[Result], prior=None, seed: int = 0) -> Labelled:
        result = results[0]
        if not result.ok:
            return Labelled(None, result=result, seed=seed)
        ids = self.taxonomy.category_ids
        probabilities = true_probabilities(result, len(ids))
        decided = [float(bool(answer(result).get(cid))) for cid in ids]
        scores = dict(zip(ids, probabilities if probabilities is not None else decided, strict=True))
        return Labelled(labels_from_scores(scores, self.taxonomy), scores, "", result, seed)


Labeler = JsonStrategy  # the json labelling call, by the name the benchmark and the review guideline use
