"""Damaged and foreign run folders in the data layer: a manifest of the wrong shape or of another tool is
refused untouched, a folder the factory did not write is never adopted, the run listing survives one bad
manifest, and `runs --check --repair` moves unreadable files aside (a damaged shard's own read error is
tested with the store, tests/data/test_store.py)."""

from __future__ import annotations

import json

import pytest

from factory.core.errors import FactoryError
from factory.data.run_folder import RUN_FORMAT, Run, check_run, list_runs, manifest_problem, repair_run
from factory.data.store import read_dataset
from tests.cli.helpers import tree_hashes
from tests.data.test_store import damage as _damage
from tests.data.test_store import write_shards as _shards


@pytest.mark.parametrize("manifest, fragment", [
    ([1, 2], "a JSON list"),
    ({"run_id": "x", "stages": None}, "stages is a JSON null"),
    ("a string", "a JSON string"),
    ({"run_id": "x", "stages": {"silver": "done"}}, "stage 'silver'"),
    ({"created_at": "2026-01-01", "rows": 7, "files": {}}, "no 'run_id'"),  # an export bundle's manifest
    ({"format": "other-tool/v2", "run_id": "x", "stages": {}}, "format"),
])
def test_a_manifest_of_the_wrong_shape_or_another_tool_is_refused_untouched(tmp_path, manifest, fragment):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "notes.txt").write_text("mine")
    before = tree_hashes(folder)
    with pytest.raises(FactoryError) as caught:
        Run.open(folder)
    assert "manifest.json" in str(caught.value) and fragment in str(caught.value), str(caught.value)
    assert tree_hashes(folder) == before  # not even a lock file


def test_a_manifest_that_is_not_json_is_refused_with_the_way_back(tmp_path):
    run = tmp_path / "run"
    _shards(run / "silver", 1)
    (run / "manifest.json").write_text('{"run_id": "run", "stages": {')
    before = tree_hashes(run)
    with pytest.raises(FactoryError, match=r"manifest.json.*not valid JSON.*runs --check"):
        Run.open(run)
    assert tree_hashes(run) == before


def test_a_folder_the_factory_did_not_write_is_never_adopted(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "thesis.docx").write_bytes(b"chapter 1")
    (folder / "data").mkdir()
    before = tree_hashes(folder)
    with pytest.raises(FactoryError, match="not a run folder of this factory"):
        Run.open(folder)
    assert tree_hashes(folder) == before


def test_new_empty_and_factory_folders_are_opened(tmp_path):
    new = Run.open(tmp_path / "new")
    assert new.manifest["format"] == RUN_FORMAT and new.manifest["stages"] == {}
    new.mark_running("silver")
    assert json.loads((tmp_path / "new" / "manifest.json").read_text())["format"] == RUN_FORMAT
    new._lock.close()
    (tmp_path / "empty").mkdir()
    Run.open(tmp_path / "empty")._lock.close()
    # resumed: the factory's own manifest, written before the "format" key existed
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text(json.dumps({"run_id": "kept-id", "created_at": "2025-01-01", "stages": {}}))
    opened = Run.open(old)
    assert opened.run_id == "kept-id" and opened.manifest["created_at"] == "2025-01-01"
    opened._lock.close()
    # dataset shards written before any manifest (what the factory's own writers leave)
    shards_only = tmp_path / "shards"
    _shards(shards_only / "bronze", 1)
    Run.open(shards_only)._lock.close()


def test_manifest_problem_accepts_the_factory_manifests():
    assert manifest_problem({"format": RUN_FORMAT, "run_id": "r", "created_at": "t", "stages": {}}) is None
    assert manifest_problem({"run_id": "r", "stages": {"silver": {"identity": {}, "state": "complete"}}}) is None
    assert manifest_problem({"run_id": 3, "stages": {}}) is not None


def test_runs_listing_survives_one_bad_manifest(tmp_path):
    good = Run.open(tmp_path / "a-good")
    _shards(good.out / "silver", 1)
    good.record_stage("silver", {"rows": 2, "model_path": "/m/model"})
    good._lock.close()
    for name, text in [("b-list", "[]"), ("c-null", '{"run_id": "c", "stages": null}'), ("d-text", '"x"'),
                       ("e-broken", "{")]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(text)
    entries = {e["run"]: e for e in list_runs(tmp_path)}
    assert entries["a-good"]["state"] == "complete" and entries["a-good"]["rows"] == 2
    for name in ("b-list", "c-null", "d-text", "e-broken"):
        assert entries[name]["state"] == "damaged" and "manifest.json" in entries[name]["note"], entries[name]


def test_check_lists_and_repair_moves_aside_byte_identical(tmp_path):
    run = Run.open(tmp_path / "run")
    shards = _shards(run.out / "silver")
    run.record_stage("silver", {"rows": 6})
    run._lock.close()
    (run.out / "bronze_phi").mkdir()
    (run.out / "bronze_phi" / "scan.json").write_text("{not json")
    _damage(shards[0], "garbage")
    damaged = {p: p.read_bytes() for p in (shards[0], run.out / "bronze_phi" / "scan.json")}
    checked, problems = check_run(run.out)
    assert checked == 5 and [rel for rel, _ in problems] == ["bronze_phi/scan.json", "silver/part-00000.parquet"]
    dest, moved = repair_run(run.out)
    assert moved == problems and dest.parent == run.out / ".damaged"
    for path, data in damaged.items():
        assert not path.exists() and (dest / path.relative_to(run.out)).read_bytes() == data
    manifest = json.loads((run.out / "manifest.json").read_text())
    assert manifest["stages"]["silver"]["state"] == "repaired" and manifest["repairs"][0]["files"] == sorted(
        rel for rel, _ in problems)
    assert check_run(run.out)[1] == [] and read_dataset(run.out / "silver").height == 4
