import polars as pl
import pytest
from click.testing import CliRunner

from factory.core.errors import FactoryError
from factory.trainer.predict import predict, read_input
from factory.trainer.classifiers import build_model, target_matrix
from factory.cli.trainer import predict as predict_command

from tests.conftest import KEYWORDS, toy_records

CATS = list(KEYWORDS)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    records = toy_records()
    model = build_model("tfidf", CATS, seed=0)
    model.fit([r["text"] for r in records], target_matrix([r["labels"] for r in records], CATS))
    return model.save(tmp_path_factory.mktemp("model") / "tfidf", {"training_set": "gold"})


def test_predict_txt_writes_contract_rows_with_scores(tmp_path, model_dir):
    src = tmp_path / "notes.txt"
    src.write_text("Mrs Jones keeps forgetting recent conversations and gets confused.\n\n"
                   "Abdomen is soft and non tender.\n", encoding="utf-8")
    target, frame = predict(model_dir, src, tmp_path / "out")
    assert target == tmp_path / "out" / "part-00000.parquet"
    saved = pl.read_parquet(target)
    assert saved.columns[:4] == ["row_id", "source", "text", "labels"]
    assert saved.schema["labels"] == pl.List(pl.Utf8)
    assert [f"score_{c}" for c in CATS] + ["score_any_category"] == [c for c in saved.columns if c.startswith("score_")]
    assert saved["labels"].to_list() == [["cognitive_impairment"], ["none"]]
    assert saved["input_line"].to_list() == [1, 3]  # the empty line is skipped, numbering kept
    assert saved["score_cognitive_impairment"][0] > 0.5 > saved["score_cognitive_impairment"][1]
    assert saved["score_any_category"][0] > 0.5 > saved["score_any_category"][1]


def test_predict_folder_and_tables(tmp_path, model_dir):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text("MRI of the brain shows hippocampal atrophy on imaging.\n", encoding="utf-8")
    (folder / "b.txt").write_text("Follow up in clinic in six weeks.\n", encoding="utf-8")
    texts, origins, lines = read_input(folder)
    assert len(texts) == 2 and origins[0].endswith("a.txt")
    csv = tmp_path / "in.csv"
    pl.DataFrame({"sentence": ["He was started on donepezil and referred to memory care."]}).write_csv(csv)
    result = CliRunner().invoke(predict_command, ["--model", str(model_dir), "--input", str(csv), "--text-column",
                                                  "sentence", "--out", str(tmp_path / "p")])
    assert result.exit_code == 0, repr(result.exception)
    assert pl.read_parquet(tmp_path / "p" / "part-00000.parquet")["labels"].to_list() == [["treatment_and_care"]]


def test_predict_bad_input_is_factory_error(tmp_path, model_dir):
    with pytest.raises(FactoryError, match="input not found"):
        predict(model_dir, tmp_path / "missing.txt", tmp_path / "o")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(FactoryError, match="no sentences"):
        predict(model_dir, empty, tmp_path / "o")
    csv = tmp_path / "x.csv"
    pl.DataFrame({"body": ["x"]}).write_csv(csv)
    with pytest.raises(FactoryError, match="no text column 'text'"):
        predict(model_dir, csv, tmp_path / "o")
    with pytest.raises(FactoryError, match="not a saved model"):
        predict(tmp_path, empty, tmp_path / "o")


def test_train_command_saves_a_model_that_predict_uses(tmp_path, taxonomy):
    import json

    from factory.data.gold import import_gold
    from factory.cli.trainer import train

    from tests.conftest import write_jsonl

    import_gold(write_jsonl(tmp_path / "g.jsonl", toy_records()), taxonomy, tmp_path / "gold")
    result = CliRunner().invoke(train, ["--gold", str(tmp_path / "gold"), "--set", "gold", "--model", "tfidf",
                                        "--out", str(tmp_path / "m"), "--cache-dir", str(tmp_path / "cache")])
    assert result.exit_code == 0, repr(result.exception)
    meta = json.loads((tmp_path / "m" / "meta.json").read_text())
    assert meta["training_set"] == "gold" and meta["training_data"]["rows"]["silver"] == 0
    src = tmp_path / "in.txt"
    src.write_text("MRI of the brain shows hippocampal atrophy on imaging.\n", encoding="utf-8")
    _, frame = predict(tmp_path / "m", src, tmp_path / "p", cache_dir=tmp_path / "cache")
    assert frame["labels"].to_list() == [["diagnostic_tests"]]
    result = CliRunner().invoke(train, ["--gold", str(tmp_path / "gold"), "--set", "silver", "--out", str(tmp_path / "n")])
    assert isinstance(result.exception, FactoryError) and "no silver data" in str(result.exception)


def test_predict_notes_splits_them_into_sentences_with_offsets(tmp_path, model_dir):
    notes = tmp_path / "notes"
    notes.mkdir()
    note = ("Mrs Jones keeps forgetting recent conversations and gets confused. Abdomen is soft and non tender.\n"
            "Plan: follow up in 2 wks.")
    (notes / "n7.txt").write_text(note, encoding="utf-8")
    result = CliRunner().invoke(predict_command, ["--model", str(model_dir), "--input", str(notes), "--notes",
                                                  "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    saved = pl.read_parquet(tmp_path / "out" / "part-00000.parquet")
    assert saved["note_id"].unique().to_list() == ["n7"] and saved["sentence_index"].to_list() == [0, 1, 2]
    for text, start, end in zip(saved["text"], saved["char_start"], saved["char_end"]):
        assert note[start:end] == text  # offsets point back into the note
    assert saved["labels"].to_list()[:2] == [["cognitive_impairment"], ["none"]]
    assert "input_line" not in saved.columns
