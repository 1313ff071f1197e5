"""The commands as functions of their specs (factory/api.py), called as the CLI, recipes and bin/bench call
them: the one stage context, the exemplar rule, gold import, prepare-model and `runs --check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory import api
from factory.core.errors import FactoryError
from factory.core.specs import (GoldImportSpec, LabelSpec, PrepareModelSpec, QualitySpec, RunsSpec, WriterEngine)
from factory.data.corpus import iter_notes, iter_sentences
from factory.data.gold import load_gold
from factory.data.split import load_or_create_split
from factory.engines.trivial import TrivialEngine
from factory.stages.label import run_label
from tests.conftest import ROOT

DEMO_GOLD = ROOT / "data" / "demo" / "gold.jsonl"


def test_a_stage_context_on_a_given_engine_owns_its_run_folder(tmp_path, taxonomy, notes_dir):
    """bin/bench's way in: the spec's model and sampling, a run folder, and its own engine."""
    engine = TrivialEngine()
    spec = WriterEngine(engine="trivial", max_tokens=64, temperature=0.5)
    with api.stage_context(spec, folder=tmp_path / "run", engine_factory=lambda: engine) as ctx:
        assert (ctx.engine_name, ctx.sampling.max_tokens, ctx.sampling.top_p) == ("trivial", 64, 0.95)
        assert ctx.prompt_tokens is None  # counted only for the engine the spec itself starts
        stats = run_label(list(iter_sentences(iter_notes(notes_dir))), taxonomy, ctx)
    assert stats.rows > 0 and (tmp_path / "run" / "silver").is_dir()
    # closed: the run's lock is released, so the next stage in this process opens the same folder
    with api.stage_context(spec, folder=tmp_path / "run", engine_factory=lambda: engine) as again:
        assert again.run.out == (tmp_path / "run").resolve()


def test_ray_and_replicas_together_are_refused_before_a_run_folder_is_made(tmp_path):
    spec = LabelSpec(notes=Path("n"), out=tmp_path / "run", ray=True, data_parallel_size=2)
    with pytest.raises(FactoryError, match="--ray and --data-parallel-size"):
        api.stage_context(spec, engine_factory=TrivialEngine)
    assert not (tmp_path / "run").exists()


def test_label_exemplars_never_include_the_frozen_test_split(tmp_path, taxonomy):
    gold_dir = tmp_path / "gold"
    api.gold_import(GoldImportSpec(path=DEMO_GOLD, out=gold_dir))
    exemplars = api.gold_train_rows(gold_dir, taxonomy)  # freezes the split compare will reuse
    rows = load_gold(gold_dir, taxonomy)
    split = load_or_create_split(rows, gold_dir, taxonomy)
    test_ids = {rows.row_ids[i] for i in split.test_indices(rows)}
    assert test_ids and not test_ids & set(exemplars.row_ids)
    assert len(exemplars) == len(rows) - len(test_ids)
    # a plain file has no split: all of it
    assert len(api.gold_train_rows(DEMO_GOLD, taxonomy)) == len(rows)


def test_gold_import_takes_a_file_or_a_reviewed_run_never_both(tmp_path, taxonomy):
    summary = api.gold_import(GoldImportSpec(path=DEMO_GOLD, out=tmp_path / "gold"))
    assert summary.rows_written == len(load_gold(tmp_path / "gold", taxonomy)) > 0
    for spec in (GoldImportSpec(), GoldImportSpec(path=DEMO_GOLD, from_review=tmp_path)):
        with pytest.raises(FactoryError, match="a gold file PATH or --from-review RUN_DIR"):
            api.gold_import(spec)


@pytest.mark.parametrize("spec, message", [
    (PrepareModelSpec(name="x", model=Path("m")), "not both"),
    (PrepareModelSpec(name="  "), "the model NAME is empty"),
])
def test_prepare_model_mistakes_are_refused_before_anything_is_fetched(spec, message):
    with pytest.raises(FactoryError, match=message):
        api.prepare_model(spec)


def test_runs_check_finds_a_damaged_shard_and_repair_names_the_command_to_rerun(tmp_path, taxonomy, notes_dir):
    run = tmp_path / "runs" / "r1"
    with api.stage_context(WriterEngine(engine="trivial"), folder=run, engine_factory=TrivialEngine) as ctx:
        run_label(list(iter_sentences(iter_notes(notes_dir))), taxonomy, ctx)
    clean = api.check_run(RunsSpec(check=Path("r1"), root=tmp_path / "runs"))  # a run's name under --root
    assert clean.run == tmp_path / "runs" / "r1" and clean.checked > 0 and clean.problems == []
    shard = sorted((run / "silver").glob("part-*.parquet"))[0]
    shard.write_bytes(b"\x00garbage")
    found = api.check_run(RunsSpec(check=run))
    assert [(rel, kind) for rel, _, kind in found.problems] == [(f"silver/{shard.name}", "damaged")]
    assert found.moved_to is None and not shard.parent.joinpath(".damaged").exists()
    repaired = api.check_run(RunsSpec(check=run, repair=True))
    assert repaired.repaired and repaired.problems == [] and [rel for rel, _ in repaired.moved] == [f"silver/{shard.name}"]
    assert (repaired.moved_to / "silver" / shard.name).is_file() and not shard.exists()
    assert repaired.rerun == ["label"]
    again = api.check_run(RunsSpec(check=run, repair=True))
    assert again.problems == [] and again.moved_to is None and not again.repaired  # nothing left to move


def test_runs_check_mistakes_are_one_line(tmp_path):
    with pytest.raises(FactoryError, match="--repair needs --check RUN"):
        api.check_run(RunsSpec(repair=True))
    with pytest.raises(FactoryError, match="run folder not found"):
        api.check_run(RunsSpec(check=tmp_path / "nowhere"))
    (tmp_path / "mine").mkdir()
    with pytest.raises(FactoryError, match="is not a run folder of this factory"):
        api.check_run(RunsSpec(check=tmp_path / "mine"))


def test_the_quality_report_needs_a_run(tmp_path):
    with pytest.raises(FactoryError, match="quality needs --run DIR"):
        api.quality_report(QualitySpec())
    with pytest.raises(FactoryError, match="is not a run folder"):
        api.quality_report(QualitySpec(run=tmp_path))


def test_verdict_and_agreement_summaries_are_none_without_judgements(tmp_path):
    assert api.verdict_counts(tmp_path, "silver") is None
    assert api.agreement_summary(tmp_path) is None
