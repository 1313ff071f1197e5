"""What every labelling strategy shares: scores to labels, one lineage record for several calls, and the
outcome of a sentence labelled without a call."""

from factory.engines.base import Result
from factory.stages.strategy import NO_CALL, Labelled, labels_from_scores, merge_results


def test_labels_are_the_categories_over_the_threshold_or_none_alone(taxonomy):
    assert labels_from_scores({"cognitive_impairment": 0.7, "notice_by_others": 0.5}, taxonomy) == ["cognitive_impairment"]
    assert labels_from_scores({"cognitive_impairment": 0.7}, taxonomy, threshold=0.8) == [taxonomy.none.id]


def test_several_calls_merge_into_one_lineage_record_that_keeps_a_failure():
    ok = Result({"answer": "yes"}, "{}", "stop", 10, 2, 1)
    failed = Result(None, "{", "length", 10, 16, 2, error="truncated")
    merged = merge_results([ok, failed, ok])
    assert (merged.prompt_tokens, merged.completion_tokens, merged.attempts) == (30, 20, 2)
    assert merged.error == "truncated" and merged.finish_reason == "length" and not merged.ok
    assert merge_results([ok, ok]).ok


def test_an_outcome_without_a_call_records_an_empty_one():
    assert Labelled(["none"]).result is NO_CALL and NO_CALL.completion_tokens == 0
