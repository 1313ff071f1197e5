"""Strategies measured against gold: scores, one LLM pass per strategy, tuning on exemplar gold only, the
verifier's agreement, and gold labelled through the label stage itself."""

import numpy as np
import pytest

from factory.core.errors import FactoryError
from factory.quality.strategy_eval import evaluate_strategies, score_against_gold
from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.label import label_texts, run_label
from factory.stages.prompt_strategies import JsonStrategy
from factory.stages.score_fusion import CombinedStrategy
from factory.stages.strategies import build_strategy
from factory.stages.strategy import Labelled
from tests.conftest import FakeEngine, json_output
from tests.stages.strategy_helpers import gold_rows, yes_no_output

def test_scores_and_failed_outputs(taxonomy):
    gold = [["cognitive_impairment"], ["none"], ["dementia_diagnosis", "treatment_and_care"]]
    perfect = score_against_gold(gold, gold, taxonomy)
    assert perfect["micro_f1"] == 1.0 and perfect["failed"] == 0
    failed = score_against_gold([None, ["none"], ["dementia_diagnosis"]], gold, taxonomy)
    assert failed["micro_f1"] == pytest.approx(2 * 1 / (1 + 3)) and failed["failed"] == 1

def test_evaluate_runs_each_llm_strategy_once(taxonomy, make_context):
    engine = FakeEngine(lambda request, sampling, call: yes_no_output("no", None) if "Category:" in request.chat[-1]["content"]
                        else json_output({"evidence": "", "labels": ["none"]}))
    gold = gold_rows()
    results, predictions = evaluate_strategies(gold, ["per-category", "embedding", "embedding+per-category", "json"],
                                               taxonomy, make_context(engine), limit=5)
    assert set(results) == {"per-category", "embedding", "embedding+per-category", "json"}
    assert engine.requests_seen == 5 * len(taxonomy.category_ids) + 5  # the combination reuses per-category's calls
    assert predictions["per-category"] == [["none"]] * 5 and len(predictions["text"]) == 5
    with pytest.raises(FactoryError, match="--gold"):
        build_strategy("fewshot", taxonomy, None)

def test_combination_weights_are_chosen_on_the_tuning_gold_not_the_scored_one(taxonomy, make_context, tmp_path):
    """An LLM that is always right and an embedding prior that is noise: tuning moves the weight to the LLM,
    and it does so from the exemplar gold alone (scoring a differently labelled set changes nothing)."""
    from factory.quality.strategy_eval import tune_combination

    gold = gold_rows()
    truth = dict(zip(gold.texts, gold.labels))

    def oracle(request, sampling, call):
        sentence = request.chat[-1]["content"].split("<<<\n")[1].split("\n>>>")[0]
        return json_output({"evidence": "", "labels": [taxonomy.get(c).choice for c in truth.get(sentence, ["none"])]})

    embedding = object.__new__(EmbeddingStrategy)
    embedding.taxonomy = taxonomy
    combined = CombinedStrategy(embedding, JsonStrategy(taxonomy))
    rng = np.random.default_rng(0)
    noise = [Labelled(["none"], {c: float(rng.uniform(0, 0.6)) for c in taxonomy.category_ids}) for _ in gold.texts]
    votes = label_texts(gold.texts, JsonStrategy(taxonomy), make_context(FakeEngine(oracle), out=tmp_path / "votes"))
    tuned = tune_combination(combined, noise, votes, gold.labels, taxonomy)
    assert tuned["tune_micro_f1"] == 1.0 and tuned["tune_cv_micro_f1"] > 0.9
    default = score_against_gold([o.labels for o in combined.combine(noise, votes)], gold.labels, taxonomy)["micro_f1"]
    assert default < 0.9  # at the untuned 1/3 and 0.5 a vote alone cannot label (1/3 < 0.5): tuning moved it

    scored = gold.subset(range(6))
    relabelled = type(scored)(scored.row_ids, scored.sources, scored.texts, [["none"]] * len(scored))
    firsts = [evaluate_strategies(s, ["embedding+json"], taxonomy, make_context(FakeEngine(oracle), out=tmp_path / name),
                                  exemplars=gold, tune=True)[0]["embedding+json"]
              for s, name in ((scored, "a"), (relabelled, "b"))]
    assert (firsts[0]["weight"], firsts[0]["threshold"]) == (firsts[1]["weight"], firsts[1]["threshold"])
    with pytest.raises(FactoryError, match="--exemplars"):
        evaluate_strategies(scored, ["embedding+json"], taxonomy, None, tune=True)

def test_the_tuning_grids_micro_f1_is_the_reports_micro_f1(taxonomy):
    """tune_combination scores each grid point with a count-only micro-F1; it must equal score_against_gold's."""
    from factory.quality.strategy_eval import _micro_f1, score_against_gold

    rng = np.random.default_rng(1)
    cats = [*taxonomy.category_ids, taxonomy.none.id]
    gold = [list(map(str, rng.choice(cats, size=rng.integers(1, 3), replace=False))) for _ in range(40)]
    for _ in range(20):
        predicted = [None if rng.random() < 0.1 else list(map(str, rng.choice(cats, size=rng.integers(0, 3), replace=False)))
                     for _ in gold]
        labelled = [Labelled(p, {}) for p in predicted]
        assert _micro_f1(labelled, gold, taxonomy) == score_against_gold(predicted, gold, taxonomy)["micro_f1"]
    assert _micro_f1([Labelled(["none"], {})] * 3, [["none"]] * 3, taxonomy) == 0.0  # no positives: 0, as sklearn's

def test_checker_agreement_counts_gold_labels_accepted_and_wrong_labels_rejected(taxonomy, make_context):
    from factory.quality.strategy_eval import evaluate_checker

    gold = gold_rows()
    truth = dict(zip(gold.texts, gold.labels))

    def judge(request, sampling, call):  # accepts exactly the gold label set
        user = request.chat[-1]["content"]
        sentence = user.split("<<<\n")[1].split("\n>>>")[0]
        named = {c.id for c in (*taxonomy.categories, taxonomy.none) if f"- {c.name}:" in user}
        verdict = "accept" if named == set(truth[sentence]) else "reject"
        return json_output({"reason": "as gold", "verdict": verdict})

    result = evaluate_checker(gold, taxonomy, make_context(FakeEngine(judge)), limit=10)
    assert result == {**result, "sentences": 10, "accept_rate_gold_labels": 1.0, "reject_rate_wrong_label": 1.0,
                      "balanced_accuracy": 1.0, "failed": 0}

def test_strategy_evaluation_labels_through_the_label_stage(notes_dir, taxonomy, make_context, tmp_path):
    """Gold is labelled by the label stage itself: the same requests and seeds silver gets, in a scratch
    run folder (nothing lands in the context's run), on the context's engine (started once)."""
    import polars as pl

    from factory.data.corpus import iter_notes, iter_sentences
    from tests.quality_helpers import keyword_labeller

    sentences = list(iter_sentences(iter_notes(notes_dir)))
    texts = [s.text for s in sentences]
    starts = []
    engine = FakeEngine(keyword_labeller)

    def factory():
        starts.append(1)
        return engine

    ctx = make_context(engine, out=tmp_path / "eval")
    ctx.engine_factory = factory
    outcomes = label_texts(texts, JsonStrategy(taxonomy), ctx)
    evaluated = {(r.chat[-1]["content"], r.seed) for reqs, _ in engine.calls for r in reqs}
    assert not (tmp_path / "eval" / "silver").exists() and len(starts) == 1
    assert label_texts(texts[:1], JsonStrategy(taxonomy), ctx)[0].labels == outcomes[0].labels and len(starts) == 1

    silver_engine = FakeEngine(keyword_labeller)
    run_label(sentences, taxonomy, make_context(silver_engine, out=tmp_path / "silver"))
    assert evaluated == {(r.chat[-1]["content"], r.seed) for reqs, _ in silver_engine.calls for r in reqs}
    silver = {r["text"]: r["labels"] for r in pl.read_parquet(tmp_path / "silver" / "silver").to_dicts()}
    assert [o.labels for o in outcomes] == [silver[t] for t in texts]
    with pytest.raises(FactoryError, match="strategy json needs the LLM"):
        label_texts(texts, JsonStrategy(taxonomy), None)


def test_the_llms_confidence_is_measured_against_gold(taxonomy, make_context):
    """An LLM that is sure (token probability 0.95) when it answers with gold's labels and unsure (0.4) when it
    answers wrongly: the report ranks right above wrong (AUROC 1) and gives the calibration error."""
    import math

    from factory.engines.base import RawOutput
    from factory.quality.strategy_eval import strategies_markdown

    gold = gold_rows()
    by_text = dict(zip(gold.texts, gold.labels))
    choice = {c.id: c.choice for c in taxonomy.categories}

    def respond(request, sampling, call):
        text = next(t for t in by_text if t in request.chat[-1]["content"])
        right = len(text) % 2 == 0  # every other sentence answered right
        wrong = [taxonomy.none.choice] if by_text[text] != ["none"] else [taxonomy.categories[0].choice]
        labels = [choice.get(c, c) for c in by_text[text]] if right else wrong
        p = 0.95 if right else 0.4
        answer = json_output({"evidence": "", "labels": labels}).text
        return RawOutput(answer, "stop", 50, 2, ((answer, math.log(p), {}),) if sampling.logprobs else None)

    results, _ = evaluate_strategies(gold, ["json", "embedding", "embedding+json"], taxonomy, make_context(FakeEngine(respond)))
    json_result = results["json"]
    right = sum(len(t) % 2 == 0 for t in gold.texts) / len(gold)
    assert json_result["confidence_n"] == len(gold) and json_result["confidence_auroc"] == 1.0
    assert json_result["exact_match"] == pytest.approx(right, abs=1e-3)
    # the sure answers are all right (0.95 vs 1.0) and the unsure all wrong (0.4 vs 0.0), bins weighted by count
    assert json_result["confidence_ece"] == pytest.approx(right * 0.05 + (1 - right) * 0.4, abs=1e-3)
    assert "confidence_ece" not in results["embedding"]  # no LLM, no confidence
    assert results["embedding+json"]["confidence_n"] == len(gold)  # the combination keeps its LLM's confidence
    table = strategies_markdown(results, "fake", "gold", len(gold))
    assert "| — |" in table and f"{json_result['confidence_ece']:.3f}, 1.000" in table
