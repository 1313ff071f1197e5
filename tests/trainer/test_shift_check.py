"""The threshold shift check: its held-out file, the earlier (unguarded) threshold rule it compares with,
the held-out file's checks, and a whole run on toy gold with the table and JSON it writes."""

import json

import numpy as np
import pytest

from factory.core.errors import FactoryError
from factory.trainer import shift_check
from factory.trainer.metrics import DEFAULT_THRESHOLD
from factory.trainer.shift_check import markdown, read_heldout, unguarded_thresholds

from tests.conftest import KEYWORDS, write_jsonl
from tests.trainer.test_selection import noisy_gold


def test_heldout_styles_fixture_is_valid_and_not_copied_from_gold(taxonomy):
    """The shift check's held-out file: taxonomy labels, 'none' alone, no demo gold sentence."""
    from pathlib import Path

    from factory.data.rows import normalise_text
    from factory.trainer.shift_check import read_heldout

    root = Path(__file__).resolve().parents[2]
    texts, labels = read_heldout(root / "tests/fixtures/heldout_styles.jsonl", taxonomy)
    raw = [json.loads(line)["labels"] for line in (root / "tests/fixtures/heldout_styles.jsonl").open()]
    assert len(texts) >= 100 and all(r == ["none"] or "none" not in r for r in raw)
    assert all(set(r) <= {*taxonomy.category_ids, "none"} for r in raw)
    gold = {normalise_text(json.loads(line)["text"]) for line in (root / "data/demo/gold.jsonl").open()}
    assert not gold & {normalise_text(t) for t in texts}
    assert sum(len(r) > 1 for r in raw) >= 10 and sum(r == ["none"] for r in raw) >= 30


def test_the_unguarded_rule_takes_each_outputs_best_cut_and_keeps_half_for_few_positives():
    y = np.zeros((40, 2), dtype=int)
    y[:10, 0] = 1  # ten positives, all scoring 0.3, negatives 0.1: any cut in (0.1, 0.3] separates them
    y[:3, 1] = 1  # three positives: too few to tune
    probs = np.where(y == 1, 0.3, 0.1).astype(float)
    cuts = unguarded_thresholds(y, probs)
    assert cuts[0] == pytest.approx(0.3) and cuts[1] == DEFAULT_THRESHOLD  # a tie goes to the cut nearest 0.5


@pytest.mark.parametrize("lines, message", [
    ([{"text": "x", "labels": "impaired_cognition"}], "row 1: needs a string `text` and a list `labels`"),
    ([{"text": "ok", "labels": ["none"]}, {"text": "x", "labels": ["no_such_category"]}], "row 2: "),
])
def test_a_bad_heldout_row_is_named(tmp_path, taxonomy, lines, message):
    with pytest.raises(FactoryError, match=message):
        read_heldout(write_jsonl(tmp_path / "h.jsonl", lines), taxonomy)
    with pytest.raises(FactoryError, match="held-out file not found"):
        read_heldout(tmp_path / "missing.jsonl", taxonomy)


def test_a_run_on_toy_gold_prints_the_table_and_writes_the_figures(tmp_path, capsys):
    gold = write_jsonl(tmp_path / "gold.jsonl", noisy_gold())
    heldout = write_jsonl(tmp_path / "heldout.jsonl",
                          [{"text": f"Per her husband, she {phrase} lately (call {i}).", "labels": [cid]}
                           for i, (cid, phrase) in enumerate(KEYWORDS.items())]
                          + [{"text": "Knee pain after the fall, no other complaint.", "labels": ["none"]}])
    shift_check.main(["--gold-file", str(gold), "--heldout", str(heldout), "--models", "tfidf",
                      "--json", str(tmp_path / "shift.json")])
    out = capsys.readouterr().out
    assert f"held-out: {heldout} ({len(KEYWORDS) + 1} sentences" in out
    (result,) = json.loads((tmp_path / "shift.json").read_text())
    assert result["family"] == "tfidf" and set(result["gold_test_micro"]) == set(shift_check.RULES)
    for rule in shift_check.RULES:
        assert 0.0 <= result[rule]["micro"] <= 1.0 and result[rule]["labels_per_sentence"] >= 0
    assert markdown([result]) in out  # the printed table is the figures'
    assert markdown([result]).splitlines()[2].startswith("| tfidf | ")
