import jsonschema
import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.corpus import iter_notes, iter_sentences
from factory.engines.base import RawOutput
from factory.stages.label import Labeler, run_label
from factory.data.store import SILVER_SCHEMA
from tests.conftest import FakeEngine, json_output


def _keyword_labeller(request, sampling, call):
    sentence = request.chat[-1]["content"]
    if "forgetting" in sentence:
        return json_output({"evidence": "keeps forgetting", "labels": ["impaired_cognition"]})
    if "donepezil" in sentence:
        return json_output({"evidence": "donepezil", "labels": ["treatment_and_care", "treatment_and_care"]})
    if "BP" in sentence:
        return RawOutput('{"evidence":"BP","lab', "length", 40, sampling.max_tokens)
    return json_output({"evidence": "", "labels": ["none"]})


def test_silver_rows_follow_the_contract(notes_dir, taxonomy, make_context):
    engine = FakeEngine(_keyword_labeller)
    ctx = make_context(engine)
    sentences = list(iter_sentences(iter_notes(notes_dir)))
    stats = run_label(sentences, taxonomy, ctx, shard_size=2)

    silver = pl.read_parquet(ctx.run.out / "silver")
    assert stats.rows == silver.height == len(sentences) - 1
    assert dict(silver.schema) == SILVER_SCHEMA
    by_text = {row["text"]: row for row in silver.to_dicts()}
    assert by_text["She keeps forgetting her keys."]["labels"] == ["cognitive_impairment"]
    assert by_text["Start donepezil 5 mg nightly."]["labels"] == ["treatment_and_care"]  # deduplicated
    assert by_text["Lungs are clear."]["labels"] == ["none"]
    row = by_text["She keeps forgetting her keys."]
    assert row["note_id"] == "a" and row["source"] == "silver" and row["engine"] == "fake"
    assert row["prompt_hash"] == Labeler(taxonomy).prompts.hash and len(row["schema_hash"]) == 64
    assert row["finish_reason"] == "stop" and row["attempts"] == 1 and row["completion_tokens"] > 0
    assert silver["row_id"].n_unique() == silver.height

    failed = pl.read_parquet(ctx.run.out / "failed")
    assert failed["text"].to_list() == ["BP 132/84."]
    assert "truncated" in failed["error"][0] and failed["task"][0] == "label"
    # one stream window (all 5 sentences) + one retry of the truncated output, with the doubled budget
    assert stats.failed == 1 and [len(r) for r, _ in engine.calls] == [5, 1] and engine.calls[1][1].max_tokens == 2 * engine.calls[0][1].max_tokens


def test_every_silver_row_validates_against_the_schema(notes_dir, taxonomy, make_context):
    ctx = make_context(FakeEngine(_keyword_labeller))
    sentences = list(iter_sentences(iter_notes(notes_dir)))
    run_label(sentences, taxonomy, ctx)
    schema = Labeler(taxonomy).schema
    rows = pl.read_parquet(ctx.run.out / "silver").to_dicts()
    assert len(rows) == len(sentences) - 1 > 0  # every sentence but the truncated one: the loop below checks rows
    for row in rows:
        written = [taxonomy.get(label).choice for label in row["labels"]]  # the model writes choice strings
        jsonschema.validate({"evidence": row["evidence"], "labels": written}, schema)


def test_rerun_makes_no_llm_calls_and_a_changed_seed_is_new_work(notes_dir, taxonomy, make_context, tmp_path):
    sentences = list(iter_sentences(iter_notes(notes_dir)))
    run_label(sentences, taxonomy, make_context(FakeEngine(_keyword_labeller), out=tmp_path / "r"))

    again = FakeEngine(_keyword_labeller)
    stats = run_label(sentences, taxonomy, make_context(again, out=tmp_path / "r"))
    # only the sentence that failed before is tried again (first attempt + its retry)
    assert [[r.chat[-1]["content"].count("BP 132/84.") for r in reqs] for reqs, _ in again.calls] == [[1], [1]]
    assert stats.skipped == len(sentences) - 1 and stats.rows == 0

    other_seed = FakeEngine(_keyword_labeller)
    with pytest.raises(FactoryError, match="different seed; use a new --out"):
        run_label(sentences, taxonomy, make_context(other_seed, out=tmp_path / "r", seed=7))
    assert other_seed.calls == []
    run_label(sentences, taxonomy, make_context(other_seed, out=tmp_path / "r7", seed=7))
    assert other_seed.requests_seen >= len(sentences)  # new identity: all new work


def test_silver_loads_with_hugging_face_datasets(notes_dir, taxonomy, make_context):
    from datasets import load_dataset

    ctx = make_context(FakeEngine(_keyword_labeller))
    run_label(list(iter_sentences(iter_notes(notes_dir))), taxonomy, ctx)
    files = sorted(str(p) for p in (ctx.run.out / "silver").glob("part-*.parquet"))
    dataset = load_dataset("parquet", data_files=files, split="train", cache_dir=str(ctx.run.out / "hf-cache"))
    assert dataset.num_rows == 4 and "labels" in dataset.column_names


def test_run_label_streams_its_input(taxonomy, make_context):
    """The corpus is consumed as labelling goes: the first rows are committed long before the last sentence
    is read, and the engine sees the stream in windows, not the whole corpus at once."""
    from factory.data.corpus import Sentence

    engine = FakeEngine(_keyword_labeller)
    ctx = make_context(engine)
    pulled = []

    def sentences():
        for i in range(600):
            pulled.append(i)
            if i == 520:  # two windows of 256 were labelled and committed before this sentence is read
                assert len(list((ctx.run.out / "silver").glob("part-*.parquet"))) >= 2
            yield Sentence("n", i, 0, 10, f"Sentence number {i} is here.")

    stats = run_label(sentences(), taxonomy, ctx, shard_size=100)
    assert pulled == list(range(600)) and stats.rows == 600
    assert [len(requests) for requests, _ in engine.calls] == [256, 256, 88]


def _confident_labeller(request, sampling, call):
    """Answers 'none' with two tokens of log-probability log(0.9) and log(0.4) where logprobs are asked for."""
    import math
    text = '{"evidence": "", "labels": ["none"]}'
    logprobs = ((text[:10], math.log(0.9), {}), (text[10:], math.log(0.4), {})) if sampling.logprobs else None
    return RawOutput(text, "stop", 10, 2, logprobs)


def test_silver_rows_carry_the_llms_confidence_from_logprobs(notes_dir, taxonomy, make_context):
    ctx = make_context(FakeEngine(_confident_labeller))
    run_label(list(iter_sentences(iter_notes(notes_dir))), taxonomy, ctx)
    silver = pl.read_parquet(ctx.run.out / "silver")
    # exp(mean(log 0.9, log 0.4)) = sqrt(0.36) = 0.6: the geometric mean of the token probabilities
    assert silver.height > 0 and silver["logprob_confidence"].to_list() == pytest.approx([0.6] * silver.height)


def test_a_silver_folder_begun_without_confidence_keeps_one_schema_and_its_keys(notes_dir, taxonomy, make_context):
    from factory.data.store import ShardWriter
    sentences = list(iter_sentences(iter_notes(notes_dir)))
    ctx = make_context(FakeEngine(_confident_labeller))
    run_label(sentences[:2], taxonomy, ctx)
    first = pl.read_parquet(ctx.run.out / "silver")
    # rewrite the folder as an earlier version left it: same rows, no confidence column
    for shard in (ctx.run.out / "silver").glob("part-*.parquet"):
        shard.unlink()
    old_schema = {k: v for k, v in SILVER_SCHEMA.items() if k != "logprob_confidence"}
    ShardWriter(ctx.run.out / "silver", old_schema).write(first.drop("logprob_confidence").to_dicts())

    stats = run_label(sentences, taxonomy, ctx)  # resumed in the same run folder
    silver = pl.read_parquet(ctx.run.out / "silver")  # one schema across shards, or this read would fail
    assert "logprob_confidence" not in silver.columns
    assert stats.skipped == 2 and silver.height == len(sentences) and silver["row_id"].n_unique() == silver.height
    assert set(first["row_id"]) <= set(silver["row_id"])  # the earlier rows were not relabelled under new keys
