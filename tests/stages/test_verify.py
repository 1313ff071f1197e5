import hashlib

import jsonschema
import polars as pl
import pytest

from factory.data.side_tables import rejected_row_ids
from factory.stages.verify import CHECK_SCHEMA, CheckTask, check_schema, current_verdicts, run_check
from factory.core.errors import FactoryError
from factory.data.store import read_dataset
from tests.conftest import FakeEngine, json_output
from tests.quality_helpers import make_run, release


def _strict_judge(request, sampling, call):
    """Rejects every label set that is not 'none' and accepts the rest."""
    user = request.chat[-1]["content"]
    if "- Not AD-related:" in user:  # the label lines name each proposed category
        return json_output({"verdict": "accept", "reason": "no AD sign stated"})
    return json_output({"verdict": "reject", "reason": "label does not fit the sentence"})


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.parquet"))}


def test_schema_is_strict_and_bounded():
    schema = check_schema()
    assert schema["additionalProperties"] is False
    assert schema["properties"]["verdict"]["enum"] == ["accept", "reject"]
    assert schema["properties"]["reason"]["maxLength"] <= 160
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"verdict": "maybe", "reason": "x"}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"verdict": "accept", "reason": "x", "labels": []}, schema)


def test_prompt_carries_sentence_and_label_definitions(taxonomy):
    chat = CheckTask("silver", taxonomy, []).chat("She keeps forgetting her keys.", ["cognitive_impairment"], "silver")
    assert chat[0]["role"] == "system" and "accept" in chat[0]["content"]
    assert "She keeps forgetting her keys." in chat[1]["content"]
    assert taxonomy.get("cognitive_impairment").definition in chat[1]["content"]


def test_verdicts_go_to_side_tables_and_silver_bronze_stay_untouched(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    before = {d: _digest(run / d) for d in ("silver", "bronze")}
    silver = read_dataset(run / "silver")
    engine = FakeEngine(_strict_judge)
    ctx = make_context(engine, out=run)
    stats = {d: run_check(run, d, taxonomy, ctx) for d in ("silver", "bronze")}
    release(ctx)

    assert {d: _digest(run / d) for d in ("silver", "bronze")} == before  # nothing rewritten or deleted
    table = pl.read_parquet(run / "silver_check")
    assert dict(table.schema) == CHECK_SCHEMA
    assert sorted(table["row_id"]) == sorted(silver["row_id"])
    assert stats["silver"].rows == silver.height and stats["bronze"].rows == 20
    verdicts = current_verdicts(run, "silver")
    expected_rejects = set(silver.filter(pl.col("labels").list.first() != "none")["row_id"])
    assert rejected_row_ids(run, "silver") == expected_rejects and expected_rejects
    rejected = verdicts.filter(pl.col("verdict") == "reject")
    assert (rejected["reason"] == "label does not fit the sentence").all()
    bronze_verdicts = current_verdicts(run, "bronze")
    assert bronze_verdicts.filter(pl.col("verdict") == "accept").height == 2  # the two 'none' sentences

    again = FakeEngine(_strict_judge)
    rerun = run_check(run, "silver", taxonomy, make_context(again, out=run))
    assert again.calls == [] and rerun.skipped == silver.height  # resume by content key


def test_invalid_verdicts_go_to_failed_not_to_the_table(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    ctx = make_context(FakeEngine(lambda r, s, c: json_output({"verdict": "perhaps", "reason": "?"})), out=run)
    stats = run_check(run, "silver", taxonomy, ctx)
    assert stats.rows == 0 and stats.failed == read_dataset(run / "silver").height
    failed = pl.read_parquet(run / "failed").filter(pl.col("task") == "check")
    assert failed.height == stats.failed and failed["error"].str.contains("schema violation").all()


def test_missing_verdicts_are_an_error_for_filters(notes_dir, taxonomy, make_context, tmp_path):
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run", bronze=False)
    with pytest.raises(FactoryError, match="run `bin/generate check"):
        rejected_row_ids(run, "silver")


# --------------------------------------------------------------------------- the real engine, started once a session

SENTENCES = ["She keeps forgetting where she parked the car.", "MoCA today was 19/30.", "Lungs are clear."]


@pytest.mark.engine
def test_real_engine_verifier_and_logprobs(vllm_engine, notes_dir, taxonomy, make_context, tmp_path):
    """The verifier through vLLM on a few rows: schema-valid verdicts in the side table; and the optional
    log-probabilities that per-category and self-consistency read come back from vLLM."""
    from factory.engines.base import Request, Sampling
    from factory.stages.strategies import PerCategoryStrategy, answer_schema, yes_probability

    real_engine = vllm_engine  # the session's one in-process vLLM engine (tests/conftest.py)
    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    ctx = make_context(real_engine, out=run, sampling=Sampling(temperature=0.0, max_tokens=96))
    stats = run_check(run, "silver", taxonomy, ctx, limit=3)
    release(ctx)
    table = read_dataset(run / "silver_check")
    assert stats.rows + stats.failed == 3 and stats.rows >= 2
    schema = check_schema()
    for row in table.to_dicts():
        jsonschema.validate({"verdict": row["verdict"], "reason": row["reason"]}, schema)
        assert row["finish_reason"] == "stop" and row["completion_tokens"] > 0 and row["engine"] == "fake"

    strategy = PerCategoryStrategy(taxonomy)
    requests = [Request(strategy.chat(s, taxonomy.categories[0]), seed=i) for i, s in enumerate(SENTENCES)]
    results = real_engine.generate(requests, answer_schema(), Sampling(max_tokens=16, logprobs=5))
    assert all(r.ok and r.parsed["answer"] in ("yes", "no") for r in results)
    assert all(r.logprobs and len(r.logprobs) == r.completion_tokens for r in results)
    assert all(0.0 <= yes_probability(r) <= 1.0 for r in results)
    plain = real_engine.generate(requests[:1], answer_schema(), Sampling(max_tokens=16))
    assert plain[0].logprobs is None  # not asked for, not returned
