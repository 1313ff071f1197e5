import json
from collections import defaultdict

import polars as pl
import pytest

from factory.data.side_tables import low_agreement_row_ids
from factory.stages.consistency import (CONSISTENCY_SCHEMA, agreement_score, current_agreement, logprob_confidence,
                                 majority_label_set, run_consistency, sample_seeds,
                                 vote_fractions)
from factory.engines.base import RawOutput, Result, Sampling
from factory.core.errors import FactoryError
from factory.data.store import read_dataset
from tests.conftest import FakeEngine, json_output
from tests.quality_helpers import make_run, release

CI, NO, NONE = "cognitive_impairment", "notice_by_others", "none"
WRITTEN_AS = {CI: "impaired_cognition"}  # the model writes a category's choice string (schemas/taxonomy.json)
SCRIPTS = {
    "She keeps forgetting her keys.": [[CI], [CI], [NO, CI], [CI], [NONE]],
    "Her daughter manages her pills.": [["requiring_assistance"], None, [NO], ["requiring_assistance"], [NO]],
}


def _scripted_sampler():
    """The n-th seed seen for a sentence answers SCRIPTS[sentence][n] (None = invalid, also on retry)."""
    seeds = defaultdict(list)

    def respond(request, sampling, call):
        text = request.chat[-1]["content"].split("<<<")[-1].split(">>>")[0].strip()
        if request.seed not in seeds[text]:
            seeds[text].append(request.seed)
        n = seeds[text].index(request.seed)
        script = SCRIPTS.get(text, [[NONE]] * 5)
        labels = script[n % len(script)]
        if labels is None:
            return RawOutput('{"evidence": 1}', "stop", 40, 5)
        return json_output({"evidence": "", "labels": [WRITTEN_AS.get(label, label) for label in labels]})

    return respond, seeds


def test_majority_agreement_and_votes_on_fixed_samples(taxonomy):
    samples = [(CI,), (CI,), (CI, NO), (CI,), (NONE,)]
    assert majority_label_set(samples, taxonomy.all_ids) == (CI,)
    assert agreement_score(samples, (CI,)) == pytest.approx(0.6)
    assert vote_fractions(samples, taxonomy.all_ids) == {CI: 0.8, NO: 0.2, NONE: 0.2}
    with_failure = [(CI,), None, (CI,), (NO,)]
    assert agreement_score(with_failure, (CI,)) == pytest.approx(0.5)  # a failed sample disagrees
    # a 2-2 tie goes to the set whose categories got more votes overall, whatever the order
    tie = [(NO,), (CI, NO), (CI, NO), (NO,), (CI,)]
    assert majority_label_set(tie, taxonomy.all_ids) == (CI, NO)
    assert majority_label_set(list(reversed(tie)), taxonomy.all_ids) == (CI, NO)
    assert majority_label_set([None, None], taxonomy.all_ids) is None


def test_seeds_are_distinct_and_stable():
    seeds = sample_seeds(0, "key", 8)
    assert len(set(seeds)) == 8 and seeds == sample_seeds(0, "key", 8)
    assert seeds != sample_seeds(1, "key", 8)


def test_logprob_confidence_is_the_mean_token_probability():
    import math

    ok = Result({"labels": []}, "", "stop", 1, 2, 1, logprobs=(("a", math.log(0.5), {}), ("b", math.log(0.5), {})))
    other = Result({"labels": []}, "", "stop", 1, 1, 1, logprobs=(("c", math.log(0.9), {}),))
    assert logprob_confidence([ok, other]) == pytest.approx((0.5 + 0.9) / 2)
    assert logprob_confidence([Result({"labels": []}, "", "stop", 1, 1, 1)]) is None


def test_side_table_from_fake_engine_samples(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    silver_before = read_dataset(run / "silver")
    respond, seeds = _scripted_sampler()
    engine = FakeEngine(respond)
    ctx = make_context(engine, out=run, sampling=Sampling(temperature=0.7, top_p=0.95, max_tokens=64))
    stats = run_consistency(run, taxonomy, ctx, samples=5)
    release(ctx)

    assert all(s.temperature == 0.7 for _, s in engine.calls)
    assert all(len(set(s)) == 5 for s in seeds.values())  # 5 distinct seeds per sentence
    table = pl.read_parquet(run / "silver_consistency")
    assert dict(table.schema) == CONSISTENCY_SCHEMA and table.height == silver_before.height == stats.rows
    rows = {r["text"]: r for r in table.to_dicts()}
    forgetting = rows["She keeps forgetting her keys."]
    assert forgetting["majority_labels"] == [CI] and forgetting["agreement"] == pytest.approx(0.6)
    assert json.loads(forgetting["votes"]) == {CI: 0.8, NO: 0.2, NONE: 0.2}
    assert forgetting["silver_agrees"] is True and forgetting["valid_samples"] == 5
    pills = rows["Her daughter manages her pills."]
    # requiring_assistance and notice_by_others tie 2-2; equal votes, so taxonomy order decides
    assert pills["majority_labels"] == [NO] and pills["agreement"] == pytest.approx(0.4)
    assert pills["valid_samples"] == 4 and pills["silver_agrees"] is False
    assert pills["logprob_confidence"] is None  # the fake engine reports no log-probabilities

    assert read_dataset(run / "silver").equals(silver_before)
    dropped = low_agreement_row_ids(run, 0.6)
    assert pills["row_id"] in dropped and forgetting["row_id"] not in dropped
    assert current_agreement(run).height == table.height


def test_greedy_sampling_is_refused(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    with pytest.raises(FactoryError, match="temperature"):
        run_consistency(run, taxonomy, make_context(FakeEngine(lambda *a: None), out=run), samples=3)
