"""The strategies that ask the LLM: per-category and checklist probabilities, few-shot example choice."""

import pytest

from factory.engines.base import Result
from factory.stages.label import label_texts
from factory.stages.prompt_strategies import FewShotStrategy, PerCategoryStrategy, answer_schema, yes_probability
from tests.conftest import FakeEngine
from tests.stages.strategy_helpers import checklist_output, gold_rows, yes_no_output

def test_yes_probability_from_logprobs_and_fallback():
    with_lp = Result({"answer": "no"}, "", "stop", 1, 1, 1, logprobs=yes_no_output("no", 0.3).logprobs)
    assert yes_probability(with_lp) == pytest.approx(0.3 / (0.3 + 0.7))
    assert yes_probability(Result({"answer": "yes"}, "", "stop", 1, 1, 1)) == 1.0  # no logprobs: the answer itself
    assert answer_schema()["properties"]["answer"]["enum"] == ["yes", "no"]

def test_per_category_asks_one_question_per_category_sharing_the_sentence_prefix(taxonomy, make_context):
    def respond(request, sampling, call):
        user = request.chat[-1]["content"]
        assert sampling.logprobs == 5  # asked for the answer's probability
        if "forgetting" in user and "Category: " + taxonomy.get("cognitive_impairment").name in user:
            return yes_no_output("yes", 0.8)
        return yes_no_output("no", 0.1)

    engine = FakeEngine(respond)
    strategy = PerCategoryStrategy(taxonomy)
    (forgetting, lungs) = label_texts(["She keeps forgetting names.", "Lungs are clear."], strategy, make_context(engine))
    requests = engine.calls[0][0]
    assert len(requests) == 2 * len(taxonomy.category_ids)
    first = [r.chat for r in requests[:len(taxonomy.category_ids)]]
    assert all(c[0] == first[0][0] for c in first)  # same system prompt
    prefixes = {c[1]["content"].split("Category:")[0] for c in first}
    assert len(prefixes) == 1  # the sentence comes first, the category last: a shared prefix
    assert forgetting.labels == ["cognitive_impairment"] and forgetting.scores["cognitive_impairment"] == pytest.approx(0.8)
    assert lungs.labels == ["none"] and max(lungs.scores.values()) == pytest.approx(0.1)

def test_fewshot_shows_the_nearest_gold_sentences_never_the_sentence_itself(taxonomy):
    gold = gold_rows()
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

def test_checklist_asks_every_category_once_and_scores_p_true(taxonomy, make_context):
    from factory.stages.strategies import ChecklistStrategy, checklist_schema, true_probabilities

    schema = checklist_schema(taxonomy)
    assert schema["required"] == taxonomy.category_ids and not schema["additionalProperties"]

    def respond(request, sampling, call):
        assert sampling.logprobs == 5
        if "forgetting" in request.chat[-1]["content"]:
            return checklist_output(taxonomy, {"cognitive_impairment": 0.9, "notice_by_others": 0.7, "treatment_and_care": 0.3})
        return checklist_output(taxonomy, {})

    engine = FakeEngine(respond)
    strategy = ChecklistStrategy(taxonomy)
    forgetting, lungs = label_texts(["Her husband says she keeps forgetting names.", "Lungs are clear."], strategy,
                                    make_context(engine))
    assert engine.requests_seen == 2  # one call per sentence, not one per category
    assert forgetting.labels == ["cognitive_impairment", "notice_by_others"]
    assert forgetting.scores["cognitive_impairment"] == pytest.approx(0.9, abs=1e-3)
    assert forgetting.scores["treatment_and_care"] == pytest.approx(0.3, abs=1e-3)
    assert lungs.labels == ["none"]
    # without log-probabilities the constrained answer decides (0 or 1)
    plain = checklist_output(taxonomy, {"dementia_diagnosis": 0.8}, with_logprobs=False)
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
