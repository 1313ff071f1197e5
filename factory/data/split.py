"""The frozen gold test split: made once, saved as <gold dir>/split.json, reused by every experiment.

Stratification is multi-label aware: a greedy version of iterative stratification (Sechidis, Tsoumakas &
Vlahavas 2011, "On the stratification of multi-label data") for two folds. It repeatedly takes the label
with the fewest unassigned sentences and gives each of those sentences to the fold that still wants most
of that label. Rare labels are placed first, so they are spread as evenly as their counts allow. 'none'
is treated as a label, so negatives are stratified too. The seed shuffles the order within a label and
breaks ties, which is what makes splits reproducible per seed and different across seeds.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from factory.data.rows import Rows
from factory.core.errors import FactoryError
from factory.data.gold import gold_fingerprint
from factory.data.taxonomy import Taxonomy

SPLIT_FILE = "split.json"
DEFAULT_TEST_FRACTION = 0.2
DEFAULT_SPLIT_SEED = 0
METHOD = "iterative stratification (Sechidis et al. 2011), greedy, 2 folds, 'none' as a label"


def iterative_stratified_test_mask(label_matrix: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of test rows. `label_matrix` is (n_rows, n_labels) of 0/1."""
    if not 0.0 < test_fraction < 1.0:
        raise FactoryError(f"test fraction must be between 0 and 1, got {test_fraction}")
    y = np.asarray(label_matrix, dtype=bool)
    n_rows = y.shape[0]
    rng = np.random.default_rng(seed)
    fractions = np.array([1.0 - test_fraction, test_fraction])  # fold 0 = train, fold 1 = test
    wanted_per_label = np.outer(fractions, y.sum(axis=0)).astype(float)  # (2, n_labels)
    wanted_total = fractions * n_rows
    fold = np.full(n_rows, -1)
    order = rng.permutation(n_rows)  # seed-dependent visiting order

    def assign(row: int, choices: np.ndarray) -> None:
        f = int(rng.choice(choices)) if len(choices) > 1 else int(choices[0])
        fold[row] = f
        wanted_per_label[f] -= y[row]
        wanted_total[f] -= 1

    while True:
        unassigned = order[fold[order] < 0]
        if len(unassigned) == 0:
            break
        remaining = y[unassigned].sum(axis=0)
        if not remaining.any():  # rows without labels: only the overall size matters
            for row in unassigned:
                assign(row, np.flatnonzero(wanted_total == wanted_total.max()))
            break
        label = int(np.argmin(np.where(remaining > 0, remaining, np.iinfo(np.int64).max)))
        for row in unassigned[y[unassigned, label]]:
            best = np.flatnonzero(wanted_per_label[:, label] == wanted_per_label[:, label].max())
            if len(best) > 1:
                best = best[wanted_total[best] == wanted_total[best].max()]
            assign(row, best)
    return fold == 1


def label_matrix_for(rows: Rows, ids: list[str]) -> np.ndarray:
    index = {cid: j for j, cid in enumerate(ids)}
    matrix = np.zeros((len(rows), len(ids)), dtype=np.int8)
    for i, labels in enumerate(rows.labels):
        for label in labels:
            if label in index:
                matrix[i, index[label]] = 1
    return matrix


@dataclass
class Split:
    seed: int
    test_fraction: float
    fingerprint: str
    assignments: dict[str, str]  # row_id -> "train" | "test"
    path: Path | None = None
    created: bool = False

    def test_indices(self, rows: Rows) -> list[int]:
        return [i for i, rid in enumerate(rows.row_ids) if self.assignments[rid] == "test"]

    def train_indices(self, rows: Rows) -> list[int]:
        return [i for i, rid in enumerate(rows.row_ids) if self.assignments[rid] == "train"]


def make_split(gold: Rows, taxonomy: Taxonomy, seed: int, test_fraction: float) -> Split:
    mask = iterative_stratified_test_mask(label_matrix_for(gold, taxonomy.all_ids), test_fraction, seed)
    assignments = {rid: ("test" if is_test else "train") for rid, is_test in zip(gold.row_ids, mask)}
    return Split(seed, test_fraction, gold_fingerprint(gold), assignments)


def check_test_coverage(split: Split, gold: Rows, taxonomy: Taxonomy) -> None:
    """Every category (and 'none', for the binary task) needs a test example, or its scores mean nothing."""
    test = gold.subset(split.test_indices(gold))
    test_counts = test.label_counts()
    all_counts = gold.label_counts()
    missing = [cid for cid in taxonomy.all_ids if test_counts.get(cid, 0) == 0]
    if missing:
        detail = ", ".join(f"{cid} ({all_counts.get(cid, 0)} in all gold)" for cid in missing)
        needed = int(np.ceil(1 / split.test_fraction))
        raise FactoryError(
            f"the gold test split has no examples of: {detail}. Add gold sentences for "
            f"{'this category' if len(missing) == 1 else 'these categories'} (about {needed}+ each at test "
            f"fraction {split.test_fraction}), then rerun with --resplit"
        )


def save_split(split: Split, gold: Rows, path: Path) -> None:
    test = gold.subset(split.test_indices(gold))
    payload = {
        "method": METHOD,
        "seed": split.seed,
        "test_fraction": split.test_fraction,
        "gold_fingerprint": split.fingerprint,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_train": len(gold) - len(test),
        "n_test": len(test),
        "test_label_counts": dict(sorted(test.label_counts().items())),
        "assignments": dict(sorted(split.assignments.items())),
    }
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_split(path: Path) -> Split:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Split(int(data["seed"]), float(data["test_fraction"]), str(data["gold_fingerprint"]),
                     dict(data["assignments"]), path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FactoryError(f"{path} is not a valid split file ({exc}); rerun with --resplit") from None


def load_or_create_split(
    gold: Rows,
    gold_dir: Path,
    taxonomy: Taxonomy,
    seed: int | None = None,
    test_fraction: float | None = None,
    resplit: bool = False,
) -> Split:
    """Reuse <gold dir>/split.json when it matches this gold set; create it when absent or --resplit.

    seed / test_fraction = None means "whatever the saved split used" (defaults for a new split).
    """
    path = Path(gold_dir) / SPLIT_FILE
    fingerprint = gold_fingerprint(gold)
    if path.exists() and not resplit:
        split = read_split(path)
        if split.fingerprint != fingerprint:
            raise FactoryError(
                f"the gold data changed since its test split was frozen ({path}); rerun with --resplit to make a "
                "new split (results will not be comparable with earlier experiments)"
            )
        if (seed is not None and seed != split.seed) or (test_fraction is not None and test_fraction != split.test_fraction):
            raise FactoryError(
                f"{path} was made with split seed {split.seed} and test fraction {split.test_fraction}; "
                "drop --split-seed/--test-fraction to reuse it, or add --resplit to replace it"
            )
        missing = set(gold.row_ids) - set(split.assignments)
        if missing:  # cannot happen when fingerprints match, unless the file was edited by hand
            raise FactoryError(f"{path} does not cover {len(missing)} gold rows; rerun with --resplit")
        check_test_coverage(split, gold, taxonomy)
        return split
    split = make_split(
        gold,
        taxonomy,
        DEFAULT_SPLIT_SEED if seed is None else seed,
        DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction,
    )
    check_test_coverage(split, gold, taxonomy)  # never freeze a split that cannot be evaluated
    save_split(split, gold, path)
    split.path, split.created = path, True
    return split
