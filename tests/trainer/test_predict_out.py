"""predict never overwrites what it did not write, and its own output only when asked (issue 13)."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.trainer.classifiers import build_model, target_matrix
from factory.trainer.predict import PREDICT_MARKER, predict, read_input
from tests.cli.helpers import assert_refused, generate, tree_hashes
from tests.conftest import KEYWORDS, toy_records

CATS = list(KEYWORDS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    records = toy_records()
    model = build_model("tfidf", CATS, seed=0)
    model.fit([r["text"] for r in records], target_matrix([r["labels"] for r in records], CATS))
    return model.save(tmp_path_factory.mktemp("model") / "tfidf", {"training_set": "gold"})


@pytest.fixture
def sentences(tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("Mrs Jones keeps forgetting recent conversations.\nAbdomen is soft.\n", encoding="utf-8")
    return path


def test_an_earlier_prediction_is_replaced_only_with_replace(tmp_path, model_dir, sentences):
    out = tmp_path / "work" / "pred"
    first = generate("predict", "--classifier-dir", model_dir, "--input", sentences, "--out", out)
    assert first.returncode == 0, first.stderr
    assert json.loads((out / PREDICT_MARKER).read_text())["written_by"] == "bin/generate predict"
    before = tree_hashes(tmp_path / "work")
    again = generate("predict", "--classifier-dir", model_dir, "--input", sentences, "--out", out)
    assert_refused(again, "holds an earlier `predict` output", "--replace")
    assert tree_hashes(tmp_path / "work") == before
    sentences.write_text("Abdomen is soft.\n", encoding="utf-8")
    replaced = generate("predict", "--classifier-dir", model_dir, "--input", sentences, "--out", out, "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert pl.read_parquet(out / "part-00000.parquet").height == 1
    older_name = generate("predict", "--classifier-dir", model_dir, "--input", sentences, "--out", out, "--overwrite")
    assert older_name.returncode == 0, older_name.stderr
    assert not [p for p in (tmp_path / "work").iterdir() if p.name.startswith(".")]  # no build or old folder left


def test_a_folder_predict_did_not_write_is_refused_even_with_overwrite(tmp_path, model_dir, sentences):
    out = tmp_path / "work" / "mine"
    out.mkdir(parents=True)
    pl.DataFrame({"text": ["keep me"]}).write_parquet(out / "part-00000.parquet")
    (tmp_path / "work" / "a-file").write_text("x")
    before = tree_hashes(tmp_path / "work")
    for target in (out, tmp_path / "work" / "a-file"):
        result = generate("predict", "--classifier-dir", model_dir, "--input", sentences, "--out", target, "--overwrite")
        assert_refused(result, str(target))
    assert tree_hashes(tmp_path / "work") == before
    with pytest.raises(FactoryError, match="was not written by `predict`"):
        predict(model_dir, sentences, out, overwrite=True)


def test_gold_style_input_that_is_not_utf8_is_one_error_line(tmp_path, model_dir):
    work = tmp_path / "work"
    work.mkdir()
    path = work / "in.jsonl"
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    before = tree_hashes(work)
    result = generate("predict", "--classifier-dir", model_dir, "--input", path, "--out", work / "pred")
    assert_refused(result, "line 2: not UTF-8")
    assert tree_hashes(work) == before


def test_object_valued_and_nul_sentences_are_refused(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": {"a": 1}}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match="row 1: 'text' is a dict"):
        read_input(path)
    path.write_text('{"text": "She forgets\\u0000."}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match="NUL character"):
        read_input(path)
