"""`train --out` never overwrites what it did not write, and replaces its own model only with --replace."""

from __future__ import annotations

import json

import pytest

from factory.data.gold import import_gold
from factory.data.output_folder import MARKER
from tests.cli.helpers import assert_refused, generate, tree_hashes
from tests.conftest import toy_records, write_jsonl


@pytest.fixture
def gold_dir(tmp_path, taxonomy):
    import_gold(write_jsonl(tmp_path / "gold.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    return tmp_path / "gold"


def _train(gold_dir, out, *extra):
    return generate("train", "--gold", gold_dir, "--set", "gold", "--classifier", "tfidf", "--no-select", "--out", out,
                    "--cache-dir", gold_dir.parent / "cache", *extra)


def test_train_refuses_a_users_meta_json_and_model_joblib(tmp_path, gold_dir):
    mine = tmp_path / "work" / "model"
    mine.mkdir(parents=True)
    (mine / "meta.json").write_text(json.dumps({"my": "notes"}))
    (mine / "model.joblib").write_bytes(b"my own model")
    before = tree_hashes(tmp_path)
    for replace in ((), ("--replace",)):
        assert_refused(_train(gold_dir, mine, *replace), f"--out {mine} is not empty and was not written by `train`",
                       "meta.json, model.joblib")
        assert tree_hashes(tmp_path) == before


def test_train_replaces_its_own_model_only_with_replace(tmp_path, gold_dir):
    out = tmp_path / "work" / "model"
    first = _train(gold_dir, out)
    assert first.returncode == 0, first.stderr[-2000:]
    assert json.loads((out / MARKER).read_text())["written_by"] == "bin/generate train"
    before = tree_hashes(tmp_path)
    assert_refused(_train(gold_dir, out), "holds an earlier `train` output", "--replace")
    assert tree_hashes(tmp_path) == before
    again = _train(gold_dir, out, "--replace")
    assert again.returncode == 0, again.stderr[-2000:]
    model_files = {k.removeprefix("work/model/") for k in before if k.startswith("work/model/")}
    assert model_files and set(tree_hashes(out)) == model_files  # the same files, written anew
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith(".")]  # no build or old folder left
