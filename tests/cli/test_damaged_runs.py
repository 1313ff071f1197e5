"""Damaged run folders and folders that are not run folders, as a user meets them (issue 13, items 6 and 8):
one `error:` line naming the file, exit code 2 and every file as it was, `runs --check` to list what is
unreadable and `runs --check --repair` to move it aside so a resume regenerates exactly the lost rows."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.corpus import iter_notes, iter_sentences
from factory.data.store import atomic_write_parquet, read_dataset
from factory.engines.base import Sampling
from factory.engines.trivial import TrivialEngine
from factory.stages.label import run_label
from factory.stages.synthesize import run_synthesize
from tests.cli.helpers import assert_refused, generate, tree_hashes


class CountingEngine(TrivialEngine):
    """The model-free engine, counting the requests it answers."""

    def __init__(self):
        super().__init__()
        self.requests = 0

    def _generate_raw(self, requests, schema, sampling):
        self.requests += len(requests)
        return super()._generate_raw(requests, schema, sampling)


def _damage(path: Path, kind: str) -> None:
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2], "garbage": b"\x00garbage" * 40}[kind])


def _unchanged(before: dict, folder: Path) -> None:
    """Every file and folder that existed before is still there, byte-identical."""
    after = tree_hashes(folder)
    assert {k: after.get(k) for k in before} == before


@pytest.fixture
def many_notes(tmp_path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    for n in range(3):
        (folder / f"n{n}.txt").write_text(
            f"Note {n}. She keeps forgetting her keys. Her daughter manages her pills. Lungs are clear on day {n}.\n",
            encoding="utf-8")
    return folder


def _label(taxonomy, make_context, notes: Path, out: Path) -> tuple[CountingEngine, int]:
    engine = CountingEngine()
    ctx = make_context(engine, out=out)
    ctx.commit_rows, ctx.commit_seconds = 3, 3600.0  # several shards of 3 rows
    try:
        stats = run_label(list(iter_sentences(iter_notes(notes))), taxonomy, ctx)
    finally:
        ctx.run._lock.close()
    return engine, stats.rows


def test_a_corrupt_silver_shard_is_checked_repaired_and_exactly_its_rows_relabelled(tmp_path, taxonomy, make_context,
                                                                                   many_notes):
    run = tmp_path / "run"
    engine, rows = _label(taxonomy, make_context, many_notes, run)
    shards = sorted((run / "silver").glob("part-*.parquet"))
    assert len(shards) >= 3 and engine.requests == rows
    all_ids = set(read_dataset(run / "silver")["row_id"].to_list())
    lost = shards[1]
    lost_ids = set(pl.read_parquet(lost)["row_id"].to_list())
    _damage(lost, "truncated")
    damaged_bytes = lost.read_bytes()

    # the original failure: resuming read the committed keys and died with "internal error"
    with pytest.raises(FactoryError) as caught:
        _label(taxonomy, make_context, many_notes, run)
    assert str(lost) in str(caught.value) and f"bin/generate runs --check {run}" in str(caught.value)

    before = tree_hashes(run)
    checked = generate("runs", "--check", run)
    assert checked.returncode == 1, checked.stderr
    assert f"damaged: {lost}" in checked.stdout and "--repair" in checked.stdout
    assert len([line for line in checked.stdout.splitlines() if line.startswith("damaged:")]) == 1
    assert tree_hashes(run) == before  # --check only reads

    repaired = generate("runs", "--check", run, "--repair")
    assert repaired.returncode == 0, repaired.stderr
    moved = list((run / ".damaged").rglob(lost.name))
    assert len(moved) == 1 and moved[0].relative_to(run).parts[2:] == ("silver", lost.name)
    assert moved[0].read_bytes() == damaged_bytes and not lost.exists()
    assert "bin/generate label" in repaired.stdout
    untouched = {k: v for k, v in before.items() if k not in ("manifest.json", f"silver/{lost.name}")}
    _unchanged(untouched, run)
    assert json.loads((run / "manifest.json").read_text())["stages"]["silver"]["state"] == "repaired"

    engine, rows = _label(taxonomy, make_context, many_notes, run)
    assert engine.requests == len(lost_ids) == rows  # 0 calls for the rows of the other shards
    new_shard = max((run / "silver").glob("part-*.parquet"))
    assert set(pl.read_parquet(new_shard)["row_id"].to_list()) == lost_ids  # the same row ids as before
    assert set(read_dataset(run / "silver")["row_id"].to_list()) == all_ids
    assert generate("runs", "--check", run).returncode == 0


def _bronze_run(tmp_path, taxonomy, make_context) -> Path:
    """A run with bronze (trivial engine) and a PHI table in which every row passes, with its scan.json."""
    run = tmp_path / "run"
    ctx = make_context(TrivialEngine(), out=run, sampling=Sampling(temperature=0.8, max_tokens=512))
    try:
        run_synthesize(taxonomy, ctx, per_category=1, per_request=1)
    finally:
        ctx.run._lock.close()
    import hashlib
    from datetime import datetime, timezone

    from factory.quality.privacy import PHI_SCHEMA

    bronze = read_dataset(run / "bronze")
    phi = pl.DataFrame([{"row_id": r["row_id"], "phi_status": "pass", "phi_reasons": [], "phi_types": [],
                         "text_sha256": hashlib.sha256(r["text"].encode()).hexdigest(),
                         "scanned_at": datetime.now(timezone.utc)} for r in bronze.iter_rows(named=True)],
                       schema=PHI_SCHEMA)
    (run / "bronze_phi").mkdir()
    atomic_write_parquet(phi, run / "bronze_phi" / "part-00000.parquet")
    (run / "bronze_phi" / "scan.json").write_text(json.dumps({"rows": phi.height, "method": "test"}))
    return run


def test_export_of_a_sound_run_works(tmp_path, taxonomy, make_context):
    run = _bronze_run(tmp_path, taxonomy, make_context)
    result = generate("export", "--run", run, "--out", tmp_path / "share")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target, kind", [("bronze/part-00000.parquet", "empty"),
                                          ("bronze/part-00000.parquet", "garbage"),
                                          ("bronze_phi/part-00000.parquet", "truncated"),
                                          ("bronze_phi/scan.json", "truncated")])
def test_a_damaged_file_is_one_error_line_naming_it(tmp_path, taxonomy, make_context, target, kind):
    run = _bronze_run(tmp_path, taxonomy, make_context)
    _damage(run / target, kind)
    before = tree_hashes(run)
    message = assert_refused(generate("export", "--run", run, "--out", tmp_path / "share"), str(run / target))
    assert f"bin/generate runs --check {run}" in message
    _unchanged(before, run)
    assert not (tmp_path / "share").exists()
    checked = generate("runs", "--check", run)
    assert checked.returncode == 1 and f"damaged: {run / target}" in checked.stdout


BAD_MANIFESTS = {"list": "[1, 2]", "null-stages": '{"run_id": "x", "created_at": "t", "stages": null}',
                 "string": '"run"', "not-json": '{"run_id": "x", "stag'}


def test_runs_lists_every_run_when_manifests_are_bad(tmp_path, taxonomy, make_context, many_notes, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")
    _label(taxonomy, make_context, many_notes, tmp_path / "good")
    for name, text in BAD_MANIFESTS.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(text)
    before = tree_hashes(tmp_path)
    result = generate("runs", "--root", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert any("good" in line and "complete" in line for line in lines), result.stderr
    for name in BAD_MANIFESTS:
        assert any(f" {name} " in line and "damaged" in line for line in lines), (name, result.stderr)
        assert any(line.startswith(f"{name}: ") and "manifest.json" in line for line in lines), (name, result.stderr)
    assert tree_hashes(tmp_path) == before


@pytest.mark.parametrize("name", list(BAD_MANIFESTS))
def test_resuming_a_run_with_a_bad_manifest_is_one_error_line(tmp_path, taxonomy, make_context, many_notes, name):
    run = tmp_path / "run"
    _label(taxonomy, make_context, many_notes, run)
    (run / "manifest.json").write_text(BAD_MANIFESTS[name])
    before = tree_hashes(run)
    message = assert_refused(generate("label", "--notes", many_notes, "--out", run), str(run / "manifest.json"))
    assert f"bin/generate runs --check {run}" in message
    assert tree_hashes(run) == before


def test_repair_of_a_bad_manifest_lets_the_run_resume_without_llm_calls(tmp_path, taxonomy, make_context, many_notes):
    run = tmp_path / "run"
    _label(taxonomy, make_context, many_notes, run)
    old = json.loads((run / "manifest.json").read_text())
    bad = '{"run_id": "' + old["run_id"] + '", "stages": null}'
    (run / "manifest.json").write_text(bad)
    checked = generate("runs", "--check", run)
    assert checked.returncode == 1 and f"damaged: {run / 'manifest.json'}" in checked.stdout
    assert generate("runs", "--check", run, "--repair").returncode == 0
    assert [p.read_text() for p in (run / ".damaged").rglob("manifest.json")] == [bad]
    recovered = json.loads((run / "manifest.json").read_text())
    assert recovered["run_id"] == old["run_id"] and recovered["stages"] == {}
    engine, rows = _label(taxonomy, make_context, many_notes, run)
    assert engine.requests == rows == 0


@pytest.mark.parametrize("contents", ["user files", "bundle manifest", "list manifest"])
def test_a_folder_that_is_not_a_run_folder_is_refused_untouched(tmp_path, many_notes, contents):
    folder = tmp_path / "mine"
    folder.mkdir()
    if contents == "user files":
        (folder / "thesis.txt").write_text("chapter 1")
        (folder / "figures").mkdir()
    elif contents == "bundle manifest":  # what `export` (or another tool) writes: not a run manifest
        (folder / "manifest.json").write_text(json.dumps({"created_at": "2026-01-01", "rows": 3, "files": {}}))
        (folder / "DATACARD.md").write_text("# card")
    else:
        (folder / "manifest.json").write_text("[]")
    before = tree_hashes(folder)
    message = assert_refused(generate("label", "--notes", many_notes, "--out", folder), str(folder))
    assert "not a run" in message
    assert tree_hashes(folder) == before
    refused = generate("runs", "--check", folder, "--repair")
    assert_refused(refused, "not a run folder")
    assert tree_hashes(folder) == before


def test_a_clean_run_checks_clean(tmp_path, taxonomy, make_context, many_notes):
    _label(taxonomy, make_context, many_notes, tmp_path / "run")
    before = tree_hashes(tmp_path / "run")
    result = generate("runs", "--check", tmp_path / "run", "--repair")
    assert result.returncode == 0 and "none damaged" in result.stdout, result
    assert tree_hashes(tmp_path / "run") == before and not (tmp_path / "run" / ".damaged").exists()
