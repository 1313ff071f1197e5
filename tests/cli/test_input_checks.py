"""Bad input of issue 19 §2, one test per report: one `error:` line, exit code 2, never a traceback or an
"internal error", nothing that existed before changed; and what was refused although it was fine (a BOM,
a read-only run) now works. Most run in this process (tests/cli/helpers.generate_in_process): no engine
ever starts, since every case is refused, or stops at a model folder that holds no model."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import polars as pl
import pytest

from factory.core.netguard import loopback_problem
from factory.data.store import SILVER_SCHEMA, ShardWriter
from tests.cli.helpers import assert_refused, generate, generate_in_process as run, tree_hashes
from tests.conftest import ROOT, toy_records, write_jsonl

TAXONOMY = ROOT / "schemas" / "taxonomy.json"


@pytest.fixture
def gold(tmp_path):
    """An imported toy gold folder."""
    result = run("gold", "import", write_jsonl(tmp_path / "gold.jsonl", toy_records()), "--out", tmp_path / "g")
    assert result.returncode == 0, result.stderr
    return tmp_path / "g"


@pytest.fixture
def no_model(tmp_path):
    """A folder that is not a model: an LLM command that gets this far stops here, before any engine."""
    folder = tmp_path / "no-model"
    folder.mkdir()
    return folder


def refused(tmp_path, *args, fragments=()) -> str:
    """Run ARGS in this process; assert it was refused in one line and that no file under tmp_path changed."""
    before = tree_hashes(tmp_path)
    message = assert_refused(run(*args), *fragments)
    after = tree_hashes(tmp_path)
    assert {k: after.get(k) for k in before} == before
    return message


# ------------------------------------------------------------------------ once "internal error", now one line

@pytest.mark.parametrize("option", ["--synthetic-weight", "--synthetic-cap-ratio"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e309"])
def test_compare_refuses_a_weight_or_ratio_that_is_not_a_finite_number(tmp_path, gold, option, value):
    message = refused(tmp_path, "compare", "--gold", gold, "--classifiers", "tfidf", option, value, "--out", tmp_path / "r",
                      fragments=(option,))
    assert "finite" in message or "range" in message


@pytest.mark.parametrize("args", [["compare", "--split-seed", "-1"], ["compare", "--seeds", "0,-3"],
                                  ["train", "--seed", "-1"], ["train", "--seed", str(2**64)]])
def test_negative_or_huge_seeds_are_refused(tmp_path, gold, args):
    command, option = args[0], args[1]
    refused(tmp_path, *args, "--gold", gold, "--classifiers" if command == "compare" else "--classifier", "tfidf",
            "--out", tmp_path / "out", fragments=(option,))


@pytest.mark.parametrize("command", [["train", "--gold", "{gold}"], ["quality", "--run", "{run}"]])
def test_out_pointing_at_an_existing_file_is_refused(tmp_path, gold, command):
    run_dir = tmp_path / "run"
    ShardWriter(run_dir / "silver", SILVER_SCHEMA)
    (run_dir / "manifest.json").write_text(json.dumps({"run_id": "run", "stages": {}}))
    mine = tmp_path / "notes.md"
    mine.write_text("my notes\n")
    args = [a.format(gold=gold, run=run_dir) for a in command]
    refused(tmp_path, *args, "--out", mine, fragments=("--out must be a folder", "is a file"))
    assert mine.read_text() == "my notes\n"


def test_predict_with_a_truncated_model_file_names_it(tmp_path, gold):
    model = tmp_path / "model"
    trained = run("train", "--gold", gold, "--classifier", "tfidf", "--no-select", "--fixed-threshold", "--out", model)
    assert trained.returncode == 0, trained.stderr
    weights = model / "model.joblib"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    sentences = tmp_path / "s.txt"
    sentences.write_text("She keeps forgetting recent conversations.\n")
    refused(tmp_path, "predict", "--classifier-dir", model, "--input", sentences, "--out", tmp_path / "p",
            fragments=("model.joblib", "damaged or truncated"))


def test_a_recipe_stage_that_runs_a_recipe_is_refused(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('[[stage]]\ncommand = "run"\nrecipe = "r.toml"\n')
    refused(tmp_path, "run", recipe, fragments=("cannot be 'run'",))


# ------------------------------------------------------------------------------------------ loopback down

def _unshare_works() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "-n", "true"]).returncode == 0


@pytest.mark.skipif(not _unshare_works(), reason="needs `unshare -n` (root or user namespaces)")
def test_label_says_the_loopback_interface_is_down_before_an_engine_starts(tmp_path, no_model):
    notes = tmp_path / "n.txt"
    notes.write_text("She keeps forgetting her keys.\n")
    result = subprocess.run(["unshare", "-n", sys.executable, str(ROOT / "bin" / "generate"), "label", "--notes",
                             str(notes), "--model", str(no_model), "--out", str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=300)
    assert_refused(result, "the loopback interface is down", "ip link set lo up")
    assert not (tmp_path / "run").exists()


def test_the_loopback_interface_is_up_here():
    assert loopback_problem() is None


# ----------------------------------------------------------------------------------------- weak messages

def test_runs_check_reports_a_shard_with_the_right_name_and_wrong_columns(tmp_path):
    from factory.core.errors import FactoryError
    from factory.data.store import existing_values

    run_dir = tmp_path / "run"
    ShardWriter(run_dir / "silver", SILVER_SCHEMA).write([
        {"row_id": f"{i:032x}", "source": "silver", "text": f"Sentence {i}.", "labels": ["none"]} for i in range(2)])
    pl.DataFrame({"cohort": [1, 2]}).write_parquet(run_dir / "silver" / "part-00001.parquet")
    with pytest.raises(FactoryError, match="part-00001.parquet.*see `bin/generate runs --check"):
        existing_values(run_dir / "silver", "row_id")  # what `label` reads to resume, and says
    checked = run("runs", "--check", run_dir)
    assert checked.returncode == 1
    assert "silver/part-00001.parquet: missing column(s) row_id" in checked.stdout, checked.stdout


@pytest.mark.parametrize("command", ["compare", "train"])
def test_compare_and_train_name_a_damaged_shard_and_its_fault(tmp_path, gold, command):
    silver = tmp_path / "run" / "silver"
    ShardWriter(silver, SILVER_SCHEMA).write([
        {"row_id": f"{i:032x}", "source": "silver", "text": f"Sentence {i}.", "labels": ["none"]} for i in range(2)])
    (silver / "part-00001.parquet").write_bytes(b"PAR1" + b"\x00" * 64 + b"PAR1")
    args = ["--sets", "gold+silver"] if command == "compare" else ["--set", "gold+silver"]
    message = refused(tmp_path, command, "--gold", gold, "--silver", silver, *args,
                      "--classifiers" if command == "compare" else "--classifier", "tfidf", "--out", tmp_path / "out",
                      fragments=("part-00001.parquet",))
    assert "datasets" not in message.lower() and "cannot read" in message


def test_a_bom_jsonl_is_read_wherever_jsonl_is_read(tmp_path, no_model):
    notes = tmp_path / "notes.jsonl"
    notes.write_bytes(b"\xef\xbb\xbf" + b'{"text": "She keeps forgetting her keys.", "id": 7}\n')
    result = run("label", "--notes", notes, "--id-column", "id", "--model", no_model, "--out", tmp_path / "run")
    assert_refused(result, "is not a Hugging Face model folder")  # past the notes, at the model
    gold = tmp_path / "gold.jsonl"
    gold.write_bytes(b"\xef\xbb\xbf" + "".join(json.dumps(r) + "\n" for r in toy_records()).encode())
    imported = run("gold", "import", gold, "--out", tmp_path / "g")
    assert imported.returncode == 0, imported.stderr


def test_a_ragged_gold_csv_is_one_line_naming_the_row(tmp_path):
    gold = tmp_path / "gold.csv"
    gold.write_text("text,labels\nShe forgets.,none\nHe is lost,none,extra\n", encoding="utf-8")
    refused(tmp_path, "gold", "import", gold, "--out", tmp_path / "g",
            fragments=("line 3 has 3 fields, the header has 2",))


@pytest.mark.parametrize("command", ["gold", "label"])
def test_an_unclosed_csv_quote_is_reported_where_it_opened(tmp_path, command):
    table = tmp_path / "t.csv"
    lines = ["text,labels"] + [f"Sentence {i},none" for i in range(1, 10)] + ['"Sentence 10 opens a quote,none']
    lines += [f"Sentence {i},none" for i in range(11, 3000)]
    table.write_text("\n".join(lines) + "\n", encoding="utf-8")
    args = ["gold", "import", table, "--out", tmp_path / "g"] if command == "gold" else \
        ["label", "--notes", table, "--out", tmp_path / "run"]
    refused(tmp_path, *args, fragments=("line 11: a quoted field opens there",))


def test_check_phi_names_the_broken_line_of_a_jsonl_gold(tmp_path):
    from tests.quality.test_export import _make_run

    run_dir, _, _ = _make_run(tmp_path)
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"text": "fine"}\n{"text": broken\n', encoding="utf-8")
    refused(tmp_path, "check-phi", "--run", run_dir, "--gold", gold, "--no-ner", fragments=("line 2", "not valid JSON"))


def _read_only_bind(source, target) -> bool:
    target.mkdir()
    steps = [["mount", "--bind", str(source), str(target)], ["mount", "-o", "remount,ro,bind", str(target)]]
    for step in steps:
        if subprocess.run(step, capture_output=True).returncode != 0:
            subprocess.run(["umount", str(target)], capture_output=True)
            return False
    return True


def test_export_reads_a_read_only_run(tmp_path):
    from tests.quality.test_export import _make_run

    run_dir, _, _ = _make_run(tmp_path)
    assert run("check-phi", "--run", run_dir, "--no-ner").returncode == 0
    read_only = tmp_path / "ro"
    if not _read_only_bind(run_dir, read_only):
        pytest.skip("cannot bind-mount a folder read-only here")
    try:
        result = run("export", "--run", read_only, "--out", tmp_path / "share")
    finally:
        subprocess.run(["umount", str(read_only)], check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "share" / "bronze" / "part-00000.parquet").is_file()


# --------------------------------------------------------------------------------------- accepted silently

def test_runs_root_that_does_not_exist_is_refused(tmp_path):
    refused(tmp_path, "runs", "--root", tmp_path / "nowhere", fragments=("--root", "not found"))


@pytest.mark.parametrize("where", ["top", "category"])
def test_a_taxonomy_name_that_is_an_object_is_refused(tmp_path, where):
    taxonomy = json.loads(TAXONOMY.read_text(encoding="utf-8"))
    if where == "top":
        taxonomy["name"] = {"en": "AD signs"}
    else:
        taxonomy["categories"][0]["name"] = {"en": "impairment"}
    path = tmp_path / "t.json"
    path.write_text(json.dumps(taxonomy), encoding="utf-8")
    refused(tmp_path, "schemas", "--taxonomy", path, "--out", tmp_path / "s", fragments=("name must be a string",))


@pytest.mark.parametrize("value", ['"--help"', '["-h"]'])
def test_a_recipe_value_that_looks_like_an_option_is_refused(tmp_path, value):
    recipe = tmp_path / "r.toml"
    key = "silver" if value.startswith("[") else "path"
    recipe.write_text(f'[[stage]]\ncommand = "{"compare" if key == "silver" else "gold import"}"\n{key} = {value}\n')
    refused(tmp_path, "run", recipe, fragments=("looks like an option",))


# ----------------------------------------------------------------------------------------------- hangs

def test_a_named_pipe_as_an_input_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "notes.txt"
    os.mkfifo(fifo)
    result = generate("label", "--notes", fifo, "--out", tmp_path / "run", timeout=120)  # a hang fails on the timeout
    assert_refused(result, "named pipe")
    for args in (["gold", "import", fifo], ["schemas", "--taxonomy", fifo], ["run", fifo]):
        assert_refused(run(*args), "named pipe")
