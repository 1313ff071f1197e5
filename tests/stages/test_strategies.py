import math

import numpy as np
import pytest

from factory.data.rows import Rows
from factory.engines.base import RawOutput, Result
from factory.quality.strategy_eval import evaluate_strategies, score_against_gold
from factory.stages.strategies import (CombinedStrategy, EmbeddingStrategy, FewShotStrategy, JsonStrategy, Labelled,
                                       PerCategoryStrategy,
                                       answer_schema, build_strategy, yes_probability)
from factory.stages.label import run_label
from factory.core.errors import FactoryError
from tests.conftest import FakeEngine, json_output, toy_records
from tests.quality_helpers import release


def _gold(records=None) -> Rows:
    records = records or toy_records(per_category=4, n_none=6)
    return Rows([r["id"] for r in records], ["gold"] * len(records), [r["text"] for r in records],
                [r["labels"] for r in records])


def _answer(word: str, p_yes: float | None) -> RawOutput:
    """A constrained yes/no answer, with vLLM-style top-k log-probabilities at the answer token."""
    logprobs = None
    if p_yes is not None:
        logprobs = (('{"', -0.01, {'{"': -0.01}), ("answer", -0.01, {"answer": -0.01}), ('":"', -0.01, {'":"': -0.01}),
                    (word, math.log(p_yes if word == "yes" else 1 - p_yes),
                     {"yes": math.log(p_yes), "no": math.log(1 - p_yes) if p_yes < 1 else -30.0, "Maybe": math.log(0.001)}),
                    ('"}', -0.01, {'"}': -0.01}))
    text = f'{{"answer":"{word}"}}'
    return RawOutput(text, "stop", 80, 5, logprobs)


def test_yes_probability_from_logprobs_and_fallback():
    with_lp = Result({"answer": "no"}, "", "stop", 1, 1, 1, logprobs=_answer("no", 0.3).logprobs)
    assert yes_probability(with_lp) == pytest.approx(0.3 / (0.3 + 0.7))
    assert yes_probability(Result({"answer": "yes"}, "", "stop", 1, 1, 1)) == 1.0  # no logprobs: the answer itself
    assert answer_schema()["properties"]["answer"]["enum"] == ["yes", "no"]


def test_per_category_asks_one_question_per_category_sharing_the_sentence_prefix(taxonomy, make_context):
    def respond(request, sampling, call):
        user = request.chat[-1]["content"]
        assert sampling.logprobs == 5  # asked for the answer's probability
        if "forgetting" in user and "Category: " + taxonomy.get("cognitive_impairment").name in user:
            return _answer("yes", 0.8)
        return _answer("no", 0.1)

    engine = FakeEngine(respond)
    strategy = PerCategoryStrategy(taxonomy)
    (forgetting, lungs) = strategy.label(["She keeps forgetting names.", "Lungs are clear."], make_context(engine))
    requests = engine.calls[0][0]
    assert len(requests) == 2 * len(taxonomy.category_ids)
    first = [r.chat for r in requests[:len(taxonomy.category_ids)]]
    assert all(c[0] == first[0][0] for c in first)  # same system prompt
    prefixes = {c[1]["content"].split("Category:")[0] for c in first}
    assert len(prefixes) == 1  # the sentence comes first, the category last: a shared prefix
    assert forgetting.labels == ["cognitive_impairment"] and forgetting.scores["cognitive_impairment"] == pytest.approx(0.8)
    assert lungs.labels == ["none"] and max(lungs.scores.values()) == pytest.approx(0.1)


def test_fewshot_shows_the_nearest_gold_sentences_never_the_sentence_itself(taxonomy):
    gold = _gold()
    strategy = FewShotStrategy(taxonomy, gold, shots=4)
    target = gold.texts[0]
    examples = strategy.examples(target)
    assert len(examples) == 4 and target not in [e["text"] for e in examples]
    # nearest last (closest to the sentence in the prompt), by the same embedder's cosine
    vectors = strategy.embedder.embed([e["text"] for e in examples] + [target])
    similarity = vectors[:-1] @ vectors[-1]
    assert list(similarity) == sorted(similarity)
    others = strategy.gold_vectors @ vectors[-1]
    chosen = {e["text"] for e in examples}
    unchosen = [others[i] for i, t in enumerate(gold.texts) if t not in chosen and t != target]
    assert min(similarity) >= max(unchosen) - 1e-6  # no closer gold sentence was left out
    # labels are written as the choice strings the model answers with
    assert all(set(e["labels"]) <= {*taxonomy.choices, taxonomy.none.choice} for e in examples)
    assert strategy.evidence("keeps forgetting", "She keeps forgetting.") == "keeps forgetting"
    assert strategy.evidence(gold.texts[5], "Lungs are clear.") == ""  # never copy gold into silver


def test_embedding_prior_is_leave_one_out_and_beats_chance_on_toy_gold(taxonomy):
    gold = _gold()
    strategy = EmbeddingStrategy(taxonomy, gold)
    outcomes = strategy.label(gold.texts)
    scores = score_against_gold([o.labels for o in outcomes], gold.labels, taxonomy)
    assert scores["micro_f1"] > 0.8  # each toy sentence has same-category neighbours (not itself)
    sims = strategy.similarities([gold.texts[0]])
    assert sims.max() < 0.999  # its own copy in gold was excluded


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


def test_scores_and_failed_outputs(taxonomy):
    gold = [["cognitive_impairment"], ["none"], ["dementia_diagnosis", "treatment_and_care"]]
    perfect = score_against_gold(gold, gold, taxonomy)
    assert perfect["micro_f1"] == 1.0 and perfect["failed"] == 0
    failed = score_against_gold([None, ["none"], ["dementia_diagnosis"]], gold, taxonomy)
    assert failed["micro_f1"] == pytest.approx(2 * 1 / (1 + 3)) and failed["failed"] == 1


def test_evaluate_runs_each_llm_strategy_once(taxonomy, make_context):
    engine = FakeEngine(lambda request, sampling, call: _answer("no", None) if "Category:" in request.chat[-1]["content"]
                        else json_output({"evidence": "", "labels": ["none"]}))
    gold = _gold()
    results, predictions = evaluate_strategies(gold, ["per-category", "embedding", "embedding+per-category", "json"],
                                               taxonomy, make_context(engine), limit=5)
    assert set(results) == {"per-category", "embedding", "embedding+per-category", "json"}
    assert engine.requests_seen == 5 * len(taxonomy.category_ids) + 5  # the combination reuses per-category's calls
    assert predictions["per-category"] == [["none"]] * 5 and len(predictions["text"]) == 5
    with pytest.raises(FactoryError, match="--gold"):
        build_strategy("fewshot", taxonomy, None)


def test_label_with_a_strategy_writes_silver_rows(notes_dir, taxonomy, make_context, tmp_path):
    import polars as pl

    from factory.data.corpus import iter_notes, iter_sentences
    from factory.data.store import SILVER_SCHEMA

    sentences = list(iter_sentences(iter_notes(notes_dir)))
    ctx = make_context(FakeEngine(lambda *a: None), out=tmp_path / "run")
    stats = run_label(sentences, taxonomy, ctx, strategy=EmbeddingStrategy(taxonomy, _gold()))
    release(ctx)
    silver = pl.read_parquet(tmp_path / "run" / "silver")
    assert dict(silver.schema) == SILVER_SCHEMA and silver.height == stats.rows == len(sentences)
    assert (silver["engine"] == "embedding").all() and (silver["evidence"] == "").all()
    again = run_label(sentences, taxonomy, make_context(FakeEngine(lambda *a: None), out=tmp_path / "run"),
                      strategy=EmbeddingStrategy(taxonomy, _gold()))
    assert again.skipped == len(sentences) and again.rows == 0


def test_negatives_teach_the_embedding_strategy_that_ordinary_notes_are_none(taxonomy):
    """20 out-of-domain notes written for this test (tests/fixtures/ood_notes, no AD content): with the demo
    gold alone the embedding strategy calls some of their sentences AD-related; with the ordinary clinical
    negatives (data/demo/negatives.jsonl) among its exemplars it calls nearly all of them 'none'."""
    from factory.data.corpus import iter_notes, iter_sentences
    from factory.data.gold import read_gold_any, read_negatives
    from tests.conftest import ROOT

    gold = read_gold_any(ROOT / "data" / "demo" / "gold.jsonl", taxonomy)
    negatives = read_negatives(ROOT / "data" / "demo" / "negatives.jsonl", taxonomy)
    texts = [s.text for s in iter_sentences(iter_notes(ROOT / "tests" / "fixtures" / "ood_notes"))]

    def none_share(rows) -> float:
        labelled = EmbeddingStrategy(taxonomy, rows).label(texts)
        return sum(o.labels == [taxonomy.none.id] for o in labelled) / len(labelled)

    before, after = none_share(gold), none_share(gold + negatives)
    assert len(texts) > 150 and after >= 0.9 and after >= before + 0.05, (before, after)


def _checklist_output(taxonomy, p_true: dict[str, float], with_logprobs: bool = True) -> RawOutput:
    """A constrained checklist answer, with vLLM-style top-k log-probabilities at each boolean token."""
    import json as _json

    answer = {cid: p_true.get(cid, 0.0) > 0.5 for cid in taxonomy.category_ids}
    logprobs = []
    for cid in taxonomy.category_ids:
        p = min(max(p_true.get(cid, 0.02), 1e-6), 1 - 1e-6)
        logprobs += [(f'"{cid}":', -0.01, {f'"{cid}":': -0.01}),
                     ("true" if answer[cid] else "false", math.log(p if answer[cid] else 1 - p),
                      {"true": math.log(p), "false": math.log(1 - p), "null": math.log(1e-4)}),
                     (",", -0.01, {",": -0.01})]
    return RawOutput(_json.dumps(answer), "stop", 300, 60, tuple(logprobs) if with_logprobs else None)


def test_checklist_asks_every_category_once_and_scores_p_true(taxonomy, make_context):
    from factory.stages.strategies import ChecklistStrategy, checklist_schema, true_probabilities

    schema = checklist_schema(taxonomy)
    assert schema["required"] == taxonomy.category_ids and not schema["additionalProperties"]

    def respond(request, sampling, call):
        assert sampling.logprobs == 5
        if "forgetting" in request.chat[-1]["content"]:
            return _checklist_output(taxonomy, {"cognitive_impairment": 0.9, "notice_by_others": 0.7, "treatment_and_care": 0.3})
        return _checklist_output(taxonomy, {})

    engine = FakeEngine(respond)
    strategy = ChecklistStrategy(taxonomy)
    forgetting, lungs = strategy.label(["Her husband says she keeps forgetting names.", "Lungs are clear."],
                                       make_context(engine))
    assert engine.requests_seen == 2  # one call per sentence, not one per category
    assert forgetting.labels == ["cognitive_impairment", "notice_by_others"]
    assert forgetting.scores["cognitive_impairment"] == pytest.approx(0.9, abs=1e-3)
    assert forgetting.scores["treatment_and_care"] == pytest.approx(0.3, abs=1e-3)
    assert lungs.labels == ["none"]
    # without log-probabilities the constrained answer decides (0 or 1)
    plain = _checklist_output(taxonomy, {"dementia_diagnosis": 0.8}, with_logprobs=False)
    result = Result({k: v for k, v in __import__("json").loads(plain.text).items()}, plain.text, "stop", 1, 1, 1)
    assert true_probabilities(result, len(taxonomy.category_ids)) is None
    assert strategy.outcome("x", [result]).labels == ["dementia_diagnosis"]


def test_checklist_prompt_shows_negated_and_multi_label_examples_of_this_taxonomy(taxonomy):
    from factory.stages.strategies import ChecklistStrategy, checklist_examples

    examples = checklist_examples(taxonomy)
    assert any(len(e["labels"]) >= 2 for e in examples) and any(not e["labels"] for e in examples)
    assert all(set(e["labels"]) <= set(taxonomy.category_ids) for e in examples)
    system = ChecklistStrategy(taxonomy).requests("Denies memory loss.", 0)[0].chat[0]["content"]
    assert "denied" in system and "True: none of them" in system


def test_combination_weights_are_chosen_on_the_tuning_gold_not_the_scored_one(taxonomy, make_context, tmp_path):
    """An LLM that is always right and an embedding prior that is noise: tuning moves the weight to the LLM,
    and it does so from the exemplar gold alone (scoring a differently labelled set changes nothing)."""
    from factory.quality.strategy_eval import tune_combination

    gold = _gold()
    truth = dict(zip(gold.texts, gold.labels))

    def oracle(request, sampling, call):
        sentence = request.chat[-1]["content"].split("<<<\n")[1].split("\n>>>")[0]
        return json_output({"evidence": "", "labels": [taxonomy.get(c).choice for c in truth.get(sentence, ["none"])]})

    embedding = object.__new__(EmbeddingStrategy)
    embedding.taxonomy = taxonomy
    combined = CombinedStrategy(embedding, JsonStrategy(taxonomy))
    rng = np.random.default_rng(0)
    noise = [Labelled(["none"], {c: float(rng.uniform(0, 0.6)) for c in taxonomy.category_ids}) for _ in gold.texts]
    votes = JsonStrategy(taxonomy).label(gold.texts, make_context(FakeEngine(oracle), out=tmp_path / "votes"))
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

    gold = _gold()
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
