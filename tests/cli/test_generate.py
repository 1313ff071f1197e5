"""`label --gold` with an imported gold folder: exemplars come from the train split only."""

from factory.cli.generate import gold_train_rows
from factory.data.gold import load_gold
from factory.data.split import load_or_create_split
from tests.cli.helpers import generate
from tests.conftest import ROOT


def test_label_exemplars_never_include_the_frozen_test_split(tmp_path, taxonomy):
    gold_dir = tmp_path / "gold"
    done = generate("gold", "import", str(ROOT / "data" / "demo" / "gold.jsonl"), "--out", str(gold_dir))
    assert done.returncode == 0, done.stderr
    exemplars = gold_train_rows(gold_dir, taxonomy)  # freezes the split compare will reuse
    rows = load_gold(gold_dir, taxonomy)
    split = load_or_create_split(rows, gold_dir, taxonomy)
    test_ids = {rows.row_ids[i] for i in split.test_indices(rows)}
    assert test_ids and not test_ids & set(exemplars.row_ids)
    assert len(exemplars) == len(rows) - len(test_ids)
    # a plain file has no split: all of it
    assert len(gold_train_rows(ROOT / "data" / "demo" / "gold.jsonl", taxonomy)) == len(rows)
