"""The one rule for folders a command writes (factory.data.output_folder), and the run folder's side of it:
a run folder never adopts another tool's gold/ or silver/, and `runs --check` names a foreign file in a
dataset folder. Every refusal is checked by hashing every file there before and after."""

from __future__ import annotations

import json
import re

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data.gold import GOLD_MARKER, GOLD_WRITER, import_gold
from factory.data.output_folder import MARKER, Writer, check_output_folder, claim_output_folder, unique_default
from factory.data.run_folder import FOREIGN, Run, check_run, repair_run
from factory.data.store import SILVER_SCHEMA, ShardWriter
from factory.trainer.compare import default_out_dir as compare_default
from factory.trainer.predict import default_out_dir as predict_default
from tests.cli.helpers import tree_hashes

REPORT = Writer("report-maker")
SHARED = Writer("sharer", needs_replace=True)
WITH_SPLIT = Writer("importer", companions=frozenset({"split.json"}))


def _write(writer: Writer, out, files: dict[str, str], replace: bool = False):
    with claim_output_folder(out, writer, replace) as folder:
        for name, text in files.items():
            (folder.build / name).parent.mkdir(parents=True, exist_ok=True)
            (folder.build / name).write_text(text)
    return out


def _silver_run(path):
    ShardWriter(path / "silver", SILVER_SCHEMA).write(
        [{"row_id": f"{i:032x}", "source": "silver", "text": f"Sentence {i}.", "labels": ["none"]} for i in range(2)])
    (path / "manifest.json").write_text(json.dumps({"format": "clinical-data-factory/run", "run_id": path.name,
                                                    "stages": {}}))
    return path


def test_a_new_folder_gets_a_marker_listing_what_was_written(tmp_path):
    out = _write(REPORT, tmp_path / "out", {"report.md": "# r", "sub/a.csv": "x"})
    marker = json.loads((out / MARKER).read_text())
    assert marker["written_by"] == "bin/generate report-maker" and marker["files"] == ["report.md", "sub"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no build folder left beside it
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (_write(REPORT, empty, {"r.md": "x"}) / "r.md").is_file()  # an existing empty folder is fine


@pytest.mark.parametrize("replace", [False, True])
def test_a_folder_the_command_did_not_write_is_refused_untouched(tmp_path, replace):
    user = tmp_path / "mine"
    user.mkdir()
    for name in ("report.md", "config.json", "metrics.csv"):
        (user / name).write_text(f"my {name}")
    (tmp_path / "a-file").write_text("x")
    other = _write(Writer("someone-else"), tmp_path / "theirs", {"report.md": "theirs"})
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match=r"mine is not empty and was not written by `report-maker` \(it holds "
                                           r"config.json, metrics.csv, report.md\); nothing was changed"):
        claim_output_folder(user, REPORT, replace)
    with pytest.raises(FactoryError, match="was not written by `report-maker`"):
        claim_output_folder(other, REPORT, replace)
    with pytest.raises(FactoryError, match="a-file is a file; `report-maker` writes a folder"):
        claim_output_folder(tmp_path / "a-file", REPORT, replace)
    assert tree_hashes(tmp_path) == before


def test_a_rerun_replaces_its_own_output_whole_and_keeps_companions(tmp_path):
    out = _write(WITH_SPLIT, tmp_path / "out", {"old.csv": "1", "shard": "a"})
    (out / "split.json").write_text("frozen")  # another command's file, kept across reruns
    _write(WITH_SPLIT, out, {"shard": "b"})
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "shard", "split.json"])
    assert (out / "shard").read_text() == "b" and (out / "split.json").read_text() == "frozen"
    assert json.loads((out / MARKER).read_text())["files"] == ["shard"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_added_to_its_own_folder_stops_the_rerun(tmp_path):
    out = _write(REPORT, tmp_path / "out", {"report.md": "r", "models/m1/meta.json": "{}"})
    (out / "notes.txt").write_text("mine")
    (out / "models" / "m1" / "extra.bin").write_text("inside a listed folder: its own")
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match=r"out holds notes.txt, which `report-maker` did not write; nothing was "
                                           "changed"):
        claim_output_folder(out, REPORT)
    assert tree_hashes(tmp_path) == before


def test_replace_is_needed_where_the_output_is_used_elsewhere(tmp_path):
    out = _write(SHARED, tmp_path / "out", {"model": "1"})
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match="is not empty: it holds an earlier `sharer` output; pass --replace"):
        claim_output_folder(out, SHARED)
    assert tree_hashes(tmp_path) == before
    _write(SHARED, out, {"model": "2"}, replace=True)
    assert (out / "model").read_text() == "2"


def test_a_failure_while_building_leaves_the_old_folder_as_it_was(tmp_path):
    out = _write(REPORT, tmp_path / "out", {"report.md": "old"})
    before = tree_hashes(tmp_path)
    with pytest.raises(RuntimeError):
        with claim_output_folder(out, REPORT) as folder:
            (folder.build / "report.md").write_text("half")
            raise RuntimeError("killed while writing")
    assert tree_hashes(tmp_path) == before


@pytest.mark.parametrize("inside,why", [
    ("silver", "is not empty and was not written by `report-maker` (it holds part-00000.parquet)"),
    ("silver/report", "is inside the run's dataset folder silver/"),
    ("silver_check", "is inside the run's dataset folder silver_check/"),
    ("bronze_phi/x", "is inside the run's dataset folder bronze_phi/"),
    ("failed", "is inside the run's dataset folder failed/"),
])
def test_nothing_is_written_into_a_runs_dataset_folders(tmp_path, inside, why):
    run = _silver_run(tmp_path / "run")
    (run / "failed").mkdir()  # empty, as a run leaves it
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match=re.escape(why)):
        claim_output_folder(run / inside, REPORT)
    assert tree_hashes(tmp_path) == before


def test_default_folders_started_in_the_same_second_differ(tmp_path):
    for make in (compare_default, predict_default, lambda: unique_default(tmp_path)):
        names = [make() for _ in range(50)]
        assert len(set(names)) == 50
        stamps = {p.name.rsplit("-", 1)[0] for p in names}
        assert len(stamps) <= 2  # the same second (or two): the random suffix alone keeps them apart


def test_gold_import_reimport_keeps_the_split_and_refuses_a_foreign_shard(tmp_path, taxonomy, toy_gold_file):
    out = tmp_path / "gold"
    import_gold(toy_gold_file, taxonomy, out)
    (out / "split.json").write_text("{}")
    import_gold(toy_gold_file, taxonomy, out)
    assert sorted(p.name for p in out.iterdir()) == [GOLD_MARKER, "part-00000.parquet", "split.json"]
    pl.DataFrame({"x": [1]}).write_parquet(out / "cohort.parquet")
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match="holds cohort.parquet, which `gold import` did not write"):
        import_gold(toy_gold_file, taxonomy, out)
    assert tree_hashes(tmp_path) == before
    assert check_output_folder(tmp_path / "new", GOLD_WRITER) is False


@pytest.mark.parametrize("entry,content", [("gold", "data.csv"), ("silver", "notes.txt"), ("silver", "part-00000.parquet/x")])
def test_a_run_folder_never_adopts_another_tools_gold_or_silver(tmp_path, entry, content):
    folder = tmp_path / "out"
    (folder / entry / content).parent.mkdir(parents=True)
    (folder / entry / content).write_text("someone else's")
    before = tree_hashes(tmp_path)
    with pytest.raises(FactoryError, match=rf"out is not empty and is not a run folder of this factory .*holds {entry}"):
        Run.open(folder)
    assert tree_hashes(tmp_path) == before


def test_a_run_folder_still_adopts_gold_import_output_and_its_own_shards(tmp_path, taxonomy, toy_gold_file):
    folder = tmp_path / "run"
    import_gold(toy_gold_file, taxonomy, folder / "gold")  # the demo recipe's first stage
    ShardWriter(folder / "silver", SILVER_SCHEMA)  # an empty dataset folder
    with Run.open(folder) as run:
        assert run.out == folder.resolve()


def test_runs_check_names_a_foreign_file_in_a_dataset_folder_and_repair_keeps_the_stage(tmp_path):
    run = _silver_run(tmp_path / "run")
    run_manifest = json.loads((run / "manifest.json").read_text())
    run_manifest["stages"]["silver"] = {"state": "complete", "identity": {}}
    (run / "manifest.json").write_text(json.dumps(run_manifest))
    assert check_run(run)[1] == []
    pl.DataFrame({"f1": [0.5]}).write_parquet(run / "silver" / "metrics.parquet")
    (run / "silver" / "report.md").write_text("a report")
    (run / "bronze_phi").mkdir()
    (run / "bronze_phi" / "scan.json").write_text("{}")  # check-phi's own record: not foreign
    _, problems = check_run(run)
    assert [rel for rel, _ in problems] == ["silver/metrics.parquet", "silver/report.md"]
    assert all(why.startswith(FOREIGN) for _, why in problems)
    dest, moved = repair_run(run)
    assert (dest / "silver" / "report.md").read_text() == "a report" and len(moved) == 2
    assert json.loads((run / "manifest.json").read_text())["stages"]["silver"]["state"] == "complete"
    assert check_run(run)[1] == []


def test_a_file_added_while_the_output_is_built_is_kept_and_the_new_output_dropped(tmp_path):
    out = _write(REPORT, tmp_path / "out", {"report.md": "old"})
    folder = claim_output_folder(out, REPORT)
    (folder.build / "report.md").write_text("new")
    (out / "notes.txt").write_text("added meanwhile")
    before = tree_hashes(tmp_path / "out")
    with pytest.raises(FactoryError, match="changed while `report-maker` ran"):
        folder.commit()
    assert tree_hashes(tmp_path / "out") == before and sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_report_is_written_whole_with_its_tables_and_a_failure_keeps_the_old_one(tmp_path, monkeypatch):
    from factory.data import store
    from factory.data.output_folder import write_report

    out = tmp_path / "report"
    files = {"t.parquet": pl.DataFrame({"a": [1]}), "s.json": {"k": 1}, "r.md": "# one\n"}
    assert write_report(out, REPORT, files, note="first") == out
    marker = json.loads((out / MARKER).read_text())
    assert marker["files"] == ["r.md", "s.json", "t.parquet"] and marker["note"] == "first"
    assert pl.read_parquet(out / "t.parquet")["a"].to_list() == [1]
    before = tree_hashes(tmp_path)

    def full_disk(frame, path):
        raise FactoryError(f"cannot write {path}: No space left on device")

    monkeypatch.setattr(store, "atomic_write_parquet", full_disk)  # the table is the last file written
    with pytest.raises(FactoryError, match="No space left"):
        write_report(out, REPORT, {"r.md": "# two\n", "t.parquet": pl.DataFrame({"a": [2]})})
    assert tree_hashes(tmp_path) == before  # the old report whole, no build folder left
    (out / "mine.txt").write_text("a user's file")
    with pytest.raises(FactoryError, match="holds mine.txt"):
        write_report(out, REPORT, files)


def test_a_run_folder_keeps_opening_with_a_report_a_command_wrote_into_it(tmp_path):
    run = tmp_path / "run"
    with Run.open(run):  # no stage ran yet: the folder has no manifest
        pass
    _write(REPORT, run / "strategies", {"strategies.md": "x"})
    (run / ".strategies.building-4242").mkdir()  # what a command killed while building it leaves
    with Run.open(run):
        pass
    (run / "strategies" / "other.txt").write_text("not the command's")
    with pytest.raises(FactoryError, match="not a run folder of this factory"):
        Run.open(run)
