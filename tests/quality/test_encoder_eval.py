"""The encoder comparison (factory/quality/encoder_eval.py): retrieval precision, and the whole report on toy gold."""

import json

import numpy as np

from factory.data.gold import import_gold
from factory.data.split import read_split
from factory.quality.encoder_eval import main, retrieval_precision


def test_retrieval_precision_counts_neighbours_with_the_same_label_set_never_the_sentence_itself():
    vectors = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99]])
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    same_pairs = retrieval_precision(vectors, [["a"], ["a"], ["b"], ["b"]], shots=1)
    assert same_pairs == {"precision_at_k": 1.0, "any_match_at_k": 1.0, "k": 1}
    crossed = retrieval_precision(vectors, [["a"], ["b"], ["a"], ["b"]], shots=1)
    assert crossed["precision_at_k"] == 0.0
    two = retrieval_precision(vectors, [["a"], ["a"], ["b"], ["b"]], shots=2)
    assert two["precision_at_k"] == 0.5 and two["any_match_at_k"] == 1.0


def test_the_report_scores_every_use_of_the_encoder_on_gold_train(tmp_path, toy_gold_file, taxonomy, capsys):
    gold = tmp_path / "gold"
    import_gold(toy_gold_file, taxonomy, gold)
    out = tmp_path / "encoders.json"
    assert main(["--gold", str(gold), "--encoders", "all-minilm-l6-v2", "--out", str(out)]) == 0
    [result] = json.loads(out.read_text())
    train = list(read_split(gold / "split.json").assignments.values()).count("train")
    assert 0 < result["gold_train_sentences"] == train
    for score in (result["embedding_strategy"]["micro_f1"], result["retrieval"]["precision_at_k"],
                  result["classifier"]["cv_micro_f1"]):
        assert 0.0 <= score <= 1.0
    assert result["dimensions"] == 384 and result["sentences_per_s"] > 0
    assert "| all-minilm-l6-v2 | 384 |" in capsys.readouterr().out


def test_a_missing_gold_folder_is_one_error_line(tmp_path, capsys):
    assert main(["--gold", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: gold folder not found")
