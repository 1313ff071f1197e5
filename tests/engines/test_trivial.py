"""The model-free engine: every answer valid for the factory's schemas, the same for the same request, and
made-up log-probabilities only when asked for."""

from __future__ import annotations

import math

import pytest

from factory.data.taxonomy import label_schema, synthesis_schema
from factory.engines.base import Request, Sampling
from factory.engines.trivial import TrivialEngine
from factory.stages.verify import check_schema


def _requests(n: int, seed: int = 0) -> list[Request]:
    return [Request([{"role": "system", "content": "rules"}, {"role": "user", "content": f"She forgot appointment {i}."}],
                    seed=seed) for i in range(n)]


@pytest.fixture(params=["label", "synthesize", "check"])
def schema(request, taxonomy):
    return {"label": label_schema(taxonomy), "synthesize": synthesis_schema(taxonomy, 3),
            "check": check_schema()}[request.param]


def test_every_answer_is_valid_for_each_schema_of_the_factory(schema):
    results = TrivialEngine().generate(_requests(30), schema, Sampling())
    assert all(r.ok and r.attempts == 1 and r.finish_reason == "stop" for r in results), [r.error for r in results]


def test_answers_depend_on_the_request_only(schema):
    engine = TrivialEngine()
    requests = _requests(12)
    alone = [engine.generate([r], schema, Sampling())[0].parsed for r in requests]
    assert [r.parsed for r in engine.generate(requests[::-1], schema, Sampling())] == alone[::-1]  # any batch order
    assert [r.parsed for r in TrivialEngine().generate(requests, schema, Sampling(temperature=0.9))] == alone
    reseeded = [r.parsed for r in engine.generate(_requests(12, seed=7), schema, Sampling())]
    assert reseeded != alone  # the request's seed is part of it


def test_label_answers_spread_over_the_categories_and_none(taxonomy):
    results = TrivialEngine().generate(_requests(60), label_schema(taxonomy), Sampling())
    labels = [tuple(r.parsed["labels"]) for r in results]
    assert ("none",) in labels and len(set(labels)) >= 5
    assert all(r.parsed["evidence"] == f"{i}." for i, r in enumerate(results))  # the sentence's last word


def test_synthesis_fills_the_requested_number_of_distinct_sentences(taxonomy):
    result = TrivialEngine().generate(_requests(1), synthesis_schema(taxonomy, 4), Sampling())[0]
    assert len(result.parsed["sentences"]) == 4 == len(set(result.parsed["sentences"]))


def test_log_probabilities_come_only_when_asked_for_and_stay_below_zero(taxonomy):
    engine = TrivialEngine()
    assert engine.generate(_requests(1), check_schema(), Sampling())[0].logprobs is None
    result = engine.generate(_requests(1), check_schema(), Sampling(logprobs=2))[0]
    assert len(result.logprobs) == math.ceil(len(result.raw) / 4)
    assert "".join(token for token, _, _ in result.logprobs) == result.raw
    assert all(lp < 0 and len(top) <= 2 and token in top for token, lp, top in result.logprobs)
    only_one = engine.generate(_requests(1), check_schema(), Sampling(logprobs=1))[0]
    assert all(len(top) == 1 for _, _, top in only_one.logprobs)
