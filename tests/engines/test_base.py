import json

from factory.engines.base import RawOutput, Request, Sampling
from factory.data.taxonomy import label_schema
from tests.conftest import FakeEngine, json_output

GOOD = {"evidence": "forgets", "labels": ["impaired_cognition"]}  # the choice string of cognitive_impairment


def _requests(n):
    return [Request([{"role": "user", "content": f"s{i}"}], seed=i) for i in range(n)]


def test_valid_outputs_pass_through_in_order(taxonomy):
    engine = FakeEngine(lambda r, s, call: json_output({**GOOD, "evidence": r.chat[0]["content"]}))
    results = engine.generate(_requests(3), label_schema(taxonomy), Sampling(max_tokens=32))
    assert [r.parsed["evidence"] for r in results] == ["s0", "s1", "s2"]
    assert all(r.ok and r.attempts == 1 for r in results)
    assert len(engine.calls) == 1


def test_truncated_output_is_retried_once_with_a_larger_budget(taxonomy):
    def respond(request, sampling, call):
        if request.seed == 1 and call == 1:
            return RawOutput('{"evidence": "forg', "length", 10, 32)
        return json_output(GOOD)

    engine = FakeEngine(respond)
    results = engine.generate(_requests(3), label_schema(taxonomy), Sampling(max_tokens=32))
    assert [r.attempts for r in results] == [1, 2, 1]
    assert all(r.ok for r in results)
    assert [len(reqs) for reqs, _ in engine.calls] == [3, 1]  # only the failed one is retried
    assert engine.calls[1][1].max_tokens == 64


def test_persistent_failures_are_recorded_not_patched(taxonomy):
    def respond(request, sampling, call):
        if request.seed == 0:
            return RawOutput('{"evidence": "x", "labels": ["no', "length", 10, sampling.max_tokens)
        return RawOutput(json.dumps({"evidence": "x", "labels": ["bogus"]}), "stop", 10, 12)

    engine = FakeEngine(respond)
    truncated, invalid = engine.generate(_requests(2), label_schema(taxonomy), Sampling(max_tokens=16))
    assert truncated.parsed is None and truncated.attempts == 2
    assert "truncated at 32 tokens" in truncated.error
    assert invalid.parsed is None and "schema violation at labels" in invalid.error
    assert invalid.raw.endswith('["bogus"]}')  # the raw text is kept for the failure report


def test_none_cannot_be_combined_with_a_category(taxonomy):
    engine = FakeEngine(lambda r, s, c: json_output({"evidence": "", "labels": ["none", "cognitive_impairment"]}))
    (result,) = engine.generate(_requests(1), label_schema(taxonomy), Sampling())
    assert not result.ok and "schema violation" in result.error
