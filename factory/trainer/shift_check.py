"""Do the default thresholds hold on text unlike gold? Train on gold train (the frozen split), score a
held-out file of sentences in other styles at three decision rules, and report ECE before and after
calibration.

    .venv/bin/python -m factory.trainer.shift_check --gold-file data/demo/gold.jsonl \
        --heldout tests/fixtures/heldout_styles.jsonl

Rules: `0.5` (--fixed-threshold), `unguarded` (the rule before the noise gate: each output's best grid
threshold on the pooled out-of-fold scores, no shrinkage, no cap) and `default` (metrics.choose_thresholds,
the cap, calibrated scores). Nothing here chooses anything: the held-out file only scores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from factory.core.errors import FactoryError
from factory.trainer.calibration import calibrate
from factory.trainer.metrics import (DEFAULT_THRESHOLD, MIN_POSITIVES_TO_TUNE, THRESHOLD_GRID, decide, evaluate,
                                     expected_calibration_error, f1_by_threshold)

RULES = ("unguarded", "0.5", "default")


def unguarded_thresholds(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """The earlier rule, for comparison only: the best pooled out-of-fold F1 per output, ties nearest 0.5."""
    values = np.asarray(THRESHOLD_GRID)
    cuts = np.full(y.shape[1], DEFAULT_THRESHOLD)
    for j in range(y.shape[1]):
        truth = y[:, j].astype(bool)
        if truth.sum() >= MIN_POSITIVES_TO_TUNE:
            f1 = f1_by_threshold(truth, probs[:, j], values)
            top = np.flatnonzero(f1 >= f1.max() - 1e-12)
            cuts[j] = values[top[np.argmin(np.abs(values[top] - DEFAULT_THRESHOLD))]]
    return cuts


def read_heldout(path: Path, taxonomy) -> tuple[list[str], list[list[str]]]:
    from factory.data.gold import read_records

    if not Path(path).is_file():
        raise FactoryError(f"held-out file not found: {path}")
    _, records = read_records(Path(path))
    texts, labels = [], []
    for number, record in enumerate(records, 1):
        if not isinstance(record.get("text"), str) or not isinstance(record.get("labels"), list):
            raise FactoryError(f"{path}, row {number}: needs a string `text` and a list `labels`")
        try:
            labels.append(taxonomy.normalise_labels(record["labels"]))
        except FactoryError as exc:
            raise FactoryError(f"{path}, row {number}: {exc}") from None
        texts.append(record["text"])
    return texts, labels


def check_family(family: str, gold_dir: Path, texts: list[str], y: np.ndarray, taxonomy, cache_dir: Path) -> dict:
    """Held-out micro-F1 and labels per sentence at each rule, and ECE (held-out, gold test, CV) raw vs calibrated."""
    from factory.trainer.compare import CompareOptions, choose_on_gold_train, fit_and_score, prepare_data

    cats = taxonomy.category_ids
    opts = CompareOptions(gold_dir=gold_dir, out_dir=gold_dir / "unused", models=[family], seeds=[0], sets=["gold"],
                          cache_dir=cache_dir)
    data = prepare_data(opts, taxonomy)
    selection = choose_on_gold_train(opts, data, taxonomy)
    model, _, scores, _ = fit_and_score(family, "gold", 0, opts, data, cats)
    cv = selection.cv[(family, "gold")]
    unguarded = unguarded_thresholds(data_y(data, cats), cv.oof)
    test_raw = model.raw_proba(data.gold_test.texts)
    raw = model.raw_proba(texts)
    test_rules = rule_decisions(model, test_raw, unguarded)
    out = {"family": family,
           "gold_test_micro": {rule: micro_f1(data.y_test, p, cats) for rule, p in test_rules.items()},
           "labels_per_sentence_gold": float(y[:, :-1].sum(axis=1).mean()),
           "ece": {"heldout": ece_pair(y, raw, model.calibrators),
                   "gold_test": ece_pair(data.y_test, test_raw, model.calibrators),
                   "cv_out_of_fold": (cv.ece_raw, cv.ece_calibrated)},
           "thresholds": {"default": model.thresholds().round(3).tolist(), "raw": np.round(cv.thresholds, 3).tolist()}}
    for rule, pred in rule_decisions(model, raw, unguarded).items():
        out[rule] = {"micro": micro_f1(y, pred, cats), "labels_per_sentence": float(pred[:, :-1].sum(1).mean())}
    return out


def rule_decisions(model, raw: np.ndarray, unguarded: np.ndarray) -> dict[str, np.ndarray]:
    """0/1 decisions of the three rules on the model's raw scores (the default decides on calibrated ones)."""
    return {"unguarded": decide(raw, unguarded), "0.5": decide(raw, DEFAULT_THRESHOLD),
            "default": model.decide(calibrate(model.calibrators, raw))}


def ece_pair(y: np.ndarray, raw: np.ndarray, calibrators) -> tuple[float, float]:
    return expected_calibration_error(y, raw), expected_calibration_error(y, calibrate(calibrators, raw))


def micro_f1(y: np.ndarray, decisions: np.ndarray, cats: list[str]) -> float:
    return {r["category"]: r["f1"] for r in evaluate(y, decisions, cats, 0.5)}["micro"]


def data_y(data, cats: list[str]) -> np.ndarray:
    from factory.trainer.classifiers import target_matrix

    return target_matrix(data.gold_train.labels, cats)


def markdown(results: list[dict]) -> str:
    lines = ["| model | old default (unguarded) | 0.5 (`--fixed-threshold`) | new default | new − 0.5 "
             "| gold test: old / 0.5 / new | ECE held-out: raw → calibrated | ECE CV: raw → calibrated |",
             "|---|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{r[rule]['micro']:.3f} ({r[rule]['labels_per_sentence']:.2f})" for rule in RULES]
        test = " / ".join(f"{r['gold_test_micro'][rule]:.3f}" for rule in RULES)
        (h0, h1), (c0, c1) = r["ece"]["heldout"], r["ece"]["cv_out_of_fold"]
        lines.append(f"| {r['family']} | {' | '.join(cells)} | {r['default']['micro'] - r['0.5']['micro']:+.3f} "
                     f"| {test} | {h0:.3f} → {h1:.3f} | {c0:.3f} → {c1:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from factory.data.gold import import_gold
    from factory.data.taxonomy import load_taxonomy
    from factory.trainer.classifiers import target_matrix

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold-file", type=Path, default=Path("data/demo/gold.jsonl"))
    parser.add_argument("--heldout", type=Path, default=Path("tests/fixtures/heldout_styles.jsonl"))
    parser.add_argument("--models", default="tfidf,encoder")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args(argv)
    taxonomy = load_taxonomy(None)
    texts, labels = read_heldout(args.heldout, taxonomy)
    y = target_matrix(labels, taxonomy.category_ids)
    with tempfile.TemporaryDirectory() as tmp:
        # A fresh import freezes the same split `compare` makes on this gold (seed 0, 20 %).
        import_gold(args.gold_file, taxonomy, Path(tmp) / "gold")
        results = [check_family(f.strip(), Path(tmp) / "gold", texts, y, taxonomy, Path(tmp) / "cache")
                   for f in args.models.split(",")]
    print(f"held-out: {args.heldout} ({len(texts)} sentences, {y[:, :-1].sum(1).mean():.2f} labels per sentence); "
          "micro-F1 (labels per sentence)")
    print(markdown(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        main()
    except FactoryError as exc:
        raise SystemExit(f"error: {exc}") from None
