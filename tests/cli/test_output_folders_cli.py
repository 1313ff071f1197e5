"""No command overwrites what it did not write, as a user meets it: `compare`, `quality`, `gold import` and
`label` refuse a folder another tool or command wrote with one `error:` line and exit code 2, and every file
that was there is byte for byte the same afterwards (sha256 before and after). `runs --check` names a
foreign file in a run's dataset folder."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.data.output_folder import MARKER, claim_output_folder
from factory.quality.report import QUALITY_WRITER
from factory.data.store import SILVER_SCHEMA, ShardWriter
from tests.cli.helpers import assert_refused, generate, tree_hashes
from tests.conftest import toy_records, write_jsonl

FAST = ("--classifiers", "tfidf", "--seeds", "0", "--no-select", "--fixed-threshold", "--test-fraction", "0.25")


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A run folder (manifest, silver shards, gold imported into it) and a comparison written into it."""
    root = tmp_path_factory.mktemp("project")
    run = root / "run"
    ShardWriter(run / "silver", SILVER_SCHEMA).write(
        [{"row_id": f"{i:032x}", "source": "silver", "text": r["text"], "labels": r["labels"]}
         for i, r in enumerate(toy_records(3, 3))])
    (run / "manifest.json").write_text(json.dumps({"format": "clinical-data-factory/run", "run_id": "run",
                                                   "stages": {}}))
    gold = write_jsonl(root / "gold.jsonl", toy_records())
    assert generate("gold", "import", gold, "--out", run / "gold").returncode == 0
    first = generate("compare", "--gold", run / "gold", *FAST, "--out", run / "experiment", "--cache-dir", root / "cache")
    assert first.returncode == 0, first.stderr[-2000:]
    return root


def _compare(project, out):
    return generate("compare", "--gold", project / "run" / "gold", *FAST, "--out", out, "--cache-dir", project / "cache")


def test_compare_refuses_a_users_report_md_config_json_and_metrics_csv(project, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    for name in ("report.md", "config.json", "metrics.csv"):
        (mine / name).write_text(f"my own {name}")
    before = tree_hashes(tmp_path)
    assert_refused(_compare(project, mine), f"--out {mine} is not empty and was not written by `compare`",
                   "config.json, metrics.csv, report.md")
    assert tree_hashes(tmp_path) == before


def test_compare_rerun_into_its_own_folder_replaces_it_whole(project):
    experiment = project / "run" / "experiment"
    before = tree_hashes(experiment)
    again = _compare(project, experiment)
    assert again.returncode == 0, again.stderr[-2000:]
    after = tree_hashes(experiment)
    assert set(after) == set(before) and after[MARKER] != before[MARKER]  # the same files, written anew
    assert json.loads((experiment / MARKER).read_text())["written_by"] == "bin/generate compare"
    assert not [p for p in (project / "run").iterdir() if p.name.startswith(".experiment")]  # no build folder left


def test_quality_and_compare_never_replace_each_others_report(project):
    run = project / "run"
    before = tree_hashes(project)
    refused = generate("quality", "--run", run, "--out", run / "experiment")
    assert_refused(refused, "was not written by `quality`", "config.json")
    quality = run / "quality"
    with claim_output_folder(quality, QUALITY_WRITER) as folder:  # as `quality` writes its report
        (folder.build / "report.md").write_text("# Quality report")
    with_quality = tree_hashes(project)
    assert_refused(_compare(project, quality), "was not written by `compare`", "report.md")
    assert tree_hashes(project) == with_quality
    for name in ("report.md", MARKER):
        (quality / name).unlink()
    quality.rmdir()
    assert tree_hashes(project) == before


@pytest.mark.parametrize("target", ["silver", "gold"])
def test_compare_into_a_runs_silver_or_gold_folder_is_refused(project, target):
    run = project / "run"
    before = tree_hashes(project)
    result = _compare(project, run / target)
    assert_refused(result, str(run / target))
    assert tree_hashes(project) == before


def test_runs_check_notices_a_foreign_file_in_a_dataset_folder(project, tmp_path):
    run = tmp_path / "run"
    ShardWriter(run / "silver", SILVER_SCHEMA).write(
        [{"row_id": "0" * 32, "source": "silver", "text": "She forgets.", "labels": ["none"]}])
    (run / "manifest.json").write_text(json.dumps({"format": "clinical-data-factory/run", "run_id": "run",
                                                   "stages": {}}))
    assert generate("runs", "--check", run).returncode == 0
    pl.DataFrame({"f1": [0.5]}).write_parquet(run / "silver" / "metrics.parquet")  # what compare used to put there
    checked = generate("runs", "--check", run)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"foreign: {run / 'silver' / 'metrics.parquet'}: not written by this factory" in checked.stdout


def test_gold_import_rerun_keeps_a_parquet_file_the_user_put_there(tmp_path):
    gold = write_jsonl(tmp_path / "gold.jsonl", toy_records())
    out = tmp_path / "g"
    assert generate("gold", "import", gold, "--out", out).returncode == 0
    pl.DataFrame({"x": [1, 2]}).write_parquet(out / "extra.parquet")
    before = tree_hashes(tmp_path)
    assert_refused(generate("gold", "import", gold, "--out", out), "holds extra.parquet, which `gold import` did not write")
    assert tree_hashes(tmp_path) == before


@pytest.mark.parametrize("entry", ["gold", "silver"])
def test_label_never_adopts_a_folder_holding_another_tools_gold_or_silver(tmp_path, entry):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n1.txt").write_text("She forgets names.\n", encoding="utf-8")
    out = tmp_path / "out"
    (out / entry).mkdir(parents=True)
    (out / entry / "labels.csv").write_text("text,labels\nx,y\n")
    before = tree_hashes(tmp_path)
    assert_refused(generate("label", "--notes", notes, "--out", out), "is not a run folder of this factory",
                   f"holds {entry}")
    assert tree_hashes(tmp_path) == before
