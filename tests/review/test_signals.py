"""The why-here signals: which category the classifier speaks of, how much doubt it adds, the consistency
votes for the LLM's labels, and the line the page shows on every row."""

from __future__ import annotations

import json

import numpy as np
import pytest

from factory.review.signals import (NEAR, Classifier, ClassifierView, classifier_doubt, classifier_part,
                                    classifier_view, fit_classifier, votes_for_labels, why_parts)

CATS = ["a", "b", "c"]
CLASSIFIER = Classifier(model=None, categories=CATS, thresholds=np.array([0.5, 0.4, 0.6]), trained_on=10)


def view(probabilities, labels):
    return classifier_view(np.array(probabilities), labels, CLASSIFIER)


def test_the_view_names_the_surest_disagreement_first():
    v = view([0.9, 0.45, 0.55], ["c"])  # says a (far) and b (barely), not c (barely), where the LLM says c
    assert (v.category, v.llm_says, v.probability) == ("a", False, 0.9) and v.disagreements == ["a", "b", "c"]
    assert v.margin == pytest.approx(0.05) and v.near


def test_without_disagreement_a_near_threshold_or_the_weakest_label_is_named():
    near = view([0.55, 0.1, 0.1], ["a"])  # agrees on a, but 0.05 above its threshold
    assert (near.category, near.disagreements, near.near) == ("a", [], True)
    sure = view([0.95, 0.9, 0.0], ["a", "b"])  # agrees, far from every threshold: the least supported label
    assert (sure.category, sure.near, sure.llm_says) == ("b", False, True) and sure.probability == 0.9


def test_doubt_is_two_for_a_disagreement_plus_up_to_one_for_closeness():
    far = ClassifierView("a", 0.99, 0.5, True, [], margin=NEAR)
    assert classifier_doubt(far) == 0.0
    assert classifier_doubt(ClassifierView("a", 0.5, 0.5, True, [], margin=0.0)) == 1.0
    assert classifier_doubt(ClassifierView("a", 0.9, 0.5, False, ["a"], margin=NEAR)) == 2.0


def test_votes_for_the_llms_labels_from_the_samples_or_from_older_rows_agreement():
    vote = {"samples": 5, "sampled_labels": json.dumps([["a", "b"], ["b", "a"], ["a"], ["none"], None])}
    assert votes_for_labels(vote, ["b", "a"]) == (2, 5)  # order of labels does not matter
    assert votes_for_labels({"samples": 4, "agreement": 0.75, "silver_agrees": True}, ["a"]) == (3, 4)
    assert votes_for_labels({"samples": 4, "agreement": 0.75, "silver_agrees": False}, ["a"]) == (0, 4)
    assert votes_for_labels({"valid_samples": 3, "sampled_labels": "not json"}, ["a"]) == (0, 3)


def test_the_why_here_line_always_has_the_classifiers_part():
    names = {"a": "Alpha", "b": "Beta", "c": "Gamma"}.get
    v = view([0.9, 0.45, 0.55], ["c"])
    assert classifier_part(v, "", names) == "classifier 0.90 vs LLM no (Alpha, 2 more disagreements)"
    assert classifier_part(None, "the run has no gold", names) == "no classifier: the run has no gold"
    vote = {"samples": 5, "sampled_labels": json.dumps([["c"]] * 2 + [["a"]] * 3), "silver_agrees": False,
            "majority_labels": ["a"], "logprob_confidence": 0.61}
    assert why_parts(v, "", vote, ["c"], names, "no votes") == [
        "classifier 0.90 vs LLM no (Alpha, 2 more disagreements)", "2 of 5 votes, majority Alpha",
        "LLM confidence 0.61"]
    assert why_parts(None, "no gold", None, ["c"], names, "no votes (consistency has not run)", 0.72) == [
        "no classifier: no gold", "no votes (consistency has not run)", "LLM confidence 0.72 when labelling"]
    assert why_parts(None, "no gold", None, ["c"], names, None) == ["no classifier: no gold"]  # bronze: no votes


def test_the_fitted_classifier_scores_each_category_against_its_threshold(taxonomy):
    from tests.conftest import KEYWORDS, toy_records

    records = toy_records()
    classifier = fit_classifier([r["text"] for r in records], [r["labels"] for r in records], taxonomy)
    assert classifier.categories == taxonomy.category_ids and classifier.trained_on == len(records)
    assert classifier.thresholds.shape == (len(taxonomy.category_ids),)
    scores = classifier.score([f"On review she {KEYWORDS['notice_by_others']}."])
    assert scores.shape == (1, len(taxonomy.category_ids))
    assert taxonomy.category_ids[int(np.argmax(scores[0]))] == "notice_by_others"
    assert classifier.score([]).shape == (0, len(taxonomy.category_ids))
