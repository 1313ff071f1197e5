import json

import numpy as np
import pytest

from factory.core.errors import FactoryError
from factory.data.gold import import_gold, load_gold
from factory.data.split import (
    SPLIT_FILE,
    iterative_stratified_test_mask,
    label_matrix_for,
    load_or_create_split,
)

from tests.conftest import toy_records, write_jsonl


@pytest.fixture
def gold(tmp_path, taxonomy, toy_gold_file):
    import_gold(toy_gold_file, taxonomy, tmp_path / "gold")
    return load_gold(tmp_path / "gold", taxonomy)


def test_same_seed_same_split_different_seed_differs(gold, taxonomy):
    y = label_matrix_for(gold, taxonomy.all_ids)
    a = iterative_stratified_test_mask(y, 0.25, seed=0)
    b = iterative_stratified_test_mask(y, 0.25, seed=0)
    c = iterative_stratified_test_mask(y, 0.25, seed=1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_split_is_stratified_per_label(gold, taxonomy):
    y = label_matrix_for(gold, taxonomy.all_ids)
    mask = iterative_stratified_test_mask(y, 0.25, seed=3)
    # 8 sentences per category (9 per two multi-label ones), 16 'none': 25 % -> 2 and 4 in test
    test_counts = dict(zip(taxonomy.all_ids, y[mask].sum(axis=0)))
    assert test_counts["none"] == 4
    assert all(2 <= test_counts[c] <= 3 for c in taxonomy.category_ids), test_counts
    assert abs(mask.sum() - 0.25 * len(mask)) <= 2


def test_split_file_is_frozen_and_reused(tmp_path, gold, taxonomy):
    gold_dir = tmp_path / "gold"
    first = load_or_create_split(gold, gold_dir, taxonomy, seed=5, test_fraction=0.25)
    assert first.created
    saved = json.loads((gold_dir / SPLIT_FILE).read_text())
    assert saved["seed"] == 5 and saved["test_fraction"] == 0.25
    assert set(saved["assignments"]) == set(gold.row_ids)
    assert set(saved["assignments"].values()) == {"train", "test"}
    again = load_or_create_split(gold, gold_dir, taxonomy)  # no seed given: reuse whatever was saved
    assert not again.created and again.assignments == first.assignments
    with pytest.raises(FactoryError, match="split seed 5.*--resplit"):
        load_or_create_split(gold, gold_dir, taxonomy, seed=6)


def test_changed_gold_is_refused_unless_resplit(tmp_path, taxonomy):
    gold_dir = tmp_path / "gold"
    records = toy_records()
    import_gold(write_jsonl(tmp_path / "a.jsonl", records), taxonomy, gold_dir)
    load_or_create_split(load_gold(gold_dir, taxonomy), gold_dir, taxonomy)
    records[0]["labels"] = ["none"]
    import_gold(write_jsonl(tmp_path / "b.jsonl", records), taxonomy, gold_dir)
    changed = load_gold(gold_dir, taxonomy)
    with pytest.raises(FactoryError, match="gold data changed.*--resplit"):
        load_or_create_split(changed, gold_dir, taxonomy)
    assert load_or_create_split(changed, gold_dir, taxonomy, resplit=True).created


def test_category_without_test_examples_is_named(tmp_path, taxonomy):
    # one single 'dementia_diagnosis' sentence: it can only land in train
    records = [r for r in toy_records() if r["labels"] != ["dementia_diagnosis"]]
    records.append({"text": "Diagnosed with Alzheimer dementia.", "labels": ["dementia_diagnosis"]})
    import_gold(write_jsonl(tmp_path / "g.jsonl", records), taxonomy, tmp_path / "gold")
    gold = load_gold(tmp_path / "gold", taxonomy)
    with pytest.raises(FactoryError, match=r"no examples of: dementia_diagnosis \(1 in all gold\)"):
        load_or_create_split(gold, tmp_path / "gold", taxonomy)
    assert not (tmp_path / "gold" / SPLIT_FILE).exists()  # an unusable split is never frozen
