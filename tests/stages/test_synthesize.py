import json
from collections import Counter

import polars as pl

from factory.engines.base import RawOutput
from factory.data.store import BRONZE_SCHEMA
from factory.stages.synthesize import SynthesizeTask, balanced_attributes, run_synthesize
from tests.conftest import FakeEngine, json_output


def _writer(request, sampling, call):
    """Five distinct sentences per request, unique per seed; one duplicate to exercise dedup."""
    prompt = request.chat[-1]["content"]
    sentences = [f"Sentence {i} from request {request.seed} about {len(prompt)}." for i in range(4)]
    sentences.append("A sentence every request repeats verbatim.")
    return json_output({"sentences": sentences})


def test_bronze_rows_per_category_with_recorded_attributes(taxonomy, make_context):
    engine = FakeEngine(_writer)
    ctx = make_context(engine)
    stats = run_synthesize(taxonomy, ctx, per_category=6, per_request=5)

    bronze = pl.read_parquet(ctx.run.out / "bronze")
    assert dict(bronze.schema) == BRONZE_SCHEMA
    counts = Counter(bronze["category"].to_list())
    assert counts == {cid: 6 for cid in taxonomy.all_ids}  # the "none" class included
    assert stats.rows == bronze.height == 60
    assert bronze["text"].n_unique() == bronze.height  # the repeated sentence is kept once
    for row in bronze.to_dicts():
        assert row["labels"] == [row["category"]] and row["source"] == "bronze"
        attributes = json.loads(row["attributes"])
        expected = taxonomy.attributes_for(row["category"])
        assert set(attributes) == set(expected)
        assert all(value in expected[name] for name, value in attributes.items())


def test_prompts_carry_the_definition_and_sampled_attributes(taxonomy, make_context):
    synth = SynthesizeTask(taxonomy, per_category=3, per_request=3)
    category = taxonomy.get("requiring_assistance")
    planned = synth.plan(category, per_category=3, ctx=make_context(FakeEngine(_writer)))[0]
    user = synth.chat(planned)[-1]["content"]
    assert category.definition in user and "Write 3 different sentences" in user
    for value in planned.attributes.values():
        assert value in user


def test_attributes_are_balanced():
    import random

    rows = balanced_attributes({"speaker": ["a", "b", "c"], "severity": ["x", "y"]}, 12, random.Random(0))
    assert Counter(r["speaker"] for r in rows) == {"a": 4, "b": 4, "c": 4}
    assert Counter(r["severity"] for r in rows) == {"x": 6, "y": 6}


def test_failed_requests_are_recorded_and_short_categories_get_another_wave(taxonomy, make_context):
    def flaky(request, sampling, call):
        if call <= 2 and request.seed % 2 == 0:  # the first wave: attempt and retry both fail
            return RawOutput('{"sentences": ["unfinished', "length", 30, sampling.max_tokens)
        return _writer(request, sampling, call)

    ctx = make_context(FakeEngine(flaky))
    stats = run_synthesize(taxonomy, ctx, per_category=4, per_request=5)
    bronze = pl.read_parquet(ctx.run.out / "bronze")
    assert Counter(bronze["category"].to_list()) == {cid: 4 for cid in taxonomy.all_ids}
    assert stats.failed > 0 and stats.short == {}  # the second wave filled every category
    failed = pl.read_parquet(ctx.run.out / "failed")
    assert set(failed["task"]) == {"synthesize"} and failed["error"].str.contains("truncated").all()


def test_rerun_of_a_finished_job_makes_no_llm_calls(taxonomy, make_context, tmp_path):
    run_synthesize(taxonomy, make_context(FakeEngine(_writer), out=tmp_path / "r"), per_category=3)
    again = FakeEngine(_writer)
    stats = run_synthesize(taxonomy, make_context(again, out=tmp_path / "r"), per_category=3)
    assert again.calls == [] and stats.rows == 0 and stats.skipped == 30


def test_a_sentence_that_is_mostly_whitespace_is_not_kept(taxonomy, make_context):
    def padded(request, sampling, call):
        good = f"A real sentence from request {request.seed}."
        return json_output({"sentences": ["  No.\n\n\n\n\n  ", good]})  # 15 characters, 3 once collapsed

    ctx = make_context(FakeEngine(padded))
    run_synthesize(taxonomy, ctx, per_category=1, per_request=2)
    texts = pl.read_parquet(ctx.run.out / "bronze")["text"].to_list()
    assert len(texts) == len(taxonomy.all_ids) and all(t.startswith("A real sentence") for t in texts)


def test_categories_a_repetitive_model_cannot_fill_are_reported_short(taxonomy, make_context):
    def repetitive(request, sampling, call):  # the same two sentences for every request
        return json_output({"sentences": ["The patient is doing well today.", "Nothing new to report today."]})

    ctx = make_context(FakeEngine(repetitive))
    stats = run_synthesize(taxonomy, ctx, per_category=3, per_request=2)
    # two distinct sentences in the whole run: the first category takes them, every other one stays empty
    first, *others = taxonomy.all_ids
    assert stats.short == {first: 2, **{cid: 0 for cid in others}}
    assert stats.rows == 2

    assert stats.requests == 8 * len(taxonomy.all_ids)  # every planned request (4 x 2 per category) was made

    # Answered requests are never asked again: with the plan spent, a rerun does not even start the engine.
    started = []
    ctx.engine_factory = lambda: started.append(1) or FakeEngine(repetitive)
    ctx.close()
    again = run_synthesize(taxonomy, ctx, per_category=3, per_request=2)
    assert (again.requests, started, again.short) == (0, [], stats.short)


def test_rows_that_are_not_sentences_go_to_failed_with_the_reason_and_more_are_asked(taxonomy, make_context):
    """Junk the embedded model really wrote (a number list, an echoed attribute, a bare instruction) never
    reaches bronze: each goes to failed/ with its reason, is counted per category in the manifest, and the
    wave planner asks for more sentences until the category is full."""
    junk = ["1] 5,2,3,7,10,11,12,13", "severity: severe", "Provide assistance"]

    def writer(request, sampling, call):
        if call == 1:  # the first wave answers with junk plus one good sentence per request
            return json_output({"sentences": [*junk, f"She keeps losing her glasses, request {request.seed}."]})
        return json_output({"sentences": [f"Her husband reports new forgetfulness, request {request.seed} item {i}."
                                          for i in range(4)]})

    ctx = make_context(FakeEngine(writer))
    stats = run_synthesize(taxonomy, ctx, per_category=3, per_request=4)  # one request a category, then more
    bronze = pl.read_parquet(ctx.run.out / "bronze")
    assert Counter(bronze["category"].to_list()) == {cid: 3 for cid in taxonomy.all_ids}
    assert not set(junk) & set(bronze["text"].to_list())
    failed = pl.read_parquet(ctx.run.out / "failed")
    reasons = Counter(failed["error"].to_list())
    assert set(failed["text"].to_list()) == set(junk) and sum(reasons.values()) == 3 * len(taxonomy.all_ids)
    assert all(error.startswith("sentence check: ") for error in reasons)
    manifest = json.loads((ctx.run.out / "manifest.json").read_text())
    per_category = manifest["stages"]["bronze"]["sentence_check_rejected"]
    assert set(per_category) == set(taxonomy.all_ids) and sum(per_category[taxonomy.none.id].values()) == 3
    assert stats.rows == bronze.height


def test_the_taxonomy_can_ask_for_more_none_sentences_than_per_category(taxonomy, make_context):
    from dataclasses import replace as with_

    heavy = with_(taxonomy, none_weight=2.5)
    ctx = make_context(FakeEngine(_writer))
    stats = run_synthesize(heavy, ctx, per_category=4, per_request=5)
    counts = Counter(pl.read_parquet(ctx.run.out / "bronze")["category"].to_list())
    assert counts[taxonomy.none.id] == 10 and all(counts[c] == 4 for c in taxonomy.category_ids)
    assert stats.rows == 10 + 4 * len(taxonomy.category_ids)


def test_none_weight_is_validated(tmp_path):
    import pytest

    from factory.core.errors import FactoryError
    from factory.data.taxonomy import load_taxonomy
    from tests.conftest import ROOT

    data = json.loads((ROOT / "schemas" / "taxonomy.json").read_text())
    for bad in (0, -1, "3", True):
        (tmp_path / "t.json").write_text(json.dumps({**data, "none_weight": bad}))
        with pytest.raises(FactoryError, match="none_weight"):
            load_taxonomy(tmp_path / "t.json")
