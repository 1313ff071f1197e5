"""Labelling strategies measured against gold: each strategy labels the gold sentences through the label stage
itself (the path silver takes), scored by micro/macro F1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from factory.core.errors import FactoryError
from factory.data.output_folder import Writer, write_report
from factory.data.rows import Rows
from factory.data.taxonomy import Taxonomy
from factory.quality.llm_vs_review import reliability
from factory.stages.context import StageContext
from factory.stages.label import label_texts
from factory.stages.strategies import LLM_STRATEGIES, Labelled, build_strategy
from factory.trainer.classifiers import target_matrix
from factory.trainer.metrics import evaluate



def score_against_gold(predicted: list[list[str] | None], gold_labels: list[list[str]], taxonomy: Taxonomy) -> dict:
    """Micro/macro F1 over the positive categories; a failed output counts as no label at all."""
    cats = taxonomy.category_ids
    y_true = target_matrix(gold_labels, cats)
    y_pred = target_matrix([p or [] for p in predicted], cats).astype(float)
    scores = {r["category"]: r for r in evaluate(y_true, y_pred, cats)}
    positives = [len([c for c in (p or []) if c != taxonomy.none.id]) for p in predicted]
    return {
        "micro_f1": scores["micro"]["f1"], "macro_f1": scores["macro"]["f1"],
        "micro_precision": scores["micro"]["precision"], "micro_recall": scores["micro"]["recall"],
        "binary_f1": scores["binary"]["f1"],
        "per_category_f1": {c: scores[c]["f1"] for c in cats},
        "sentences": len(predicted), "failed": sum(p is None for p in predicted),
        "mean_labels_predicted": float(np.mean(positives)) if positives else 0.0,
        "mean_labels_gold": float(np.mean([len([c for c in g if c != taxonomy.none.id]) for g in gold_labels])),
        "none_rate_predicted": float(np.mean([p == [taxonomy.none.id] for p in predicted])),
    }


WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)
THRESHOLD_GRID = np.round(np.arange(0.1, 0.9001, 0.05), 2)


def confidence_against_gold(labelled: list[Labelled], gold_labels: list[list[str]]) -> dict:
    """How far the LLM's own confidence (the logprob confidence silver rows carry) can be trusted, against
    gold: the expected calibration error of P(label set == gold's) and the AUROC of telling right answers
    from wrong ones. Empty when the engine gave no log-probabilities (or the strategy asks no LLM)."""
    pairs = [(o.confidence, sorted(o.labels or []) == sorted(g)) for o, g in zip(labelled, gold_labels, strict=True)
             if o.ok and o.confidence is not None]
    if not pairs:
        return {}
    confidence = np.array([c for c, _ in pairs])
    correct = np.array([right for _, right in pairs])
    both = 0 < correct.sum() < len(correct)  # AUROC needs a right and a wrong answer
    return {"confidence_n": len(pairs), "confidence_mean": round(float(confidence.mean()), 3),
            "exact_match": round(float(correct.mean()), 3),
            "confidence_ece": round(reliability(confidence, correct)["ece"], 3),
            "confidence_auroc": round(float(roc_auc_score(correct, confidence)), 3) if both else None}


def _micro_f1(labelled: list[Labelled], gold_labels: list[list[str]], taxonomy: Taxonomy) -> float:
    """score_against_gold's micro-F1 (2TP / (2TP + FP + FN) over the positive categories, as scikit-learn
    computes it), from the counts alone: the tuning grid asks for it thousands of times, and the full
    per-category report made one tuning take half a minute."""
    cats = taxonomy.category_ids
    y_true = target_matrix(gold_labels, cats)[:, :-1].astype(bool)
    y_pred = target_matrix([o.labels or [] for o in labelled], cats)[:, :-1].astype(bool)
    tp, fp, fn = int((y_true & y_pred).sum()), int((~y_true & y_pred).sum()), int((y_true & ~y_pred).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def choose_combination(combined, prior: list[Labelled], votes: list[Labelled], gold_labels: list[list[str]],
                       taxonomy: Taxonomy) -> tuple[float, float, float]:
    """The (LLM weight, threshold) of the grid with the best micro-F1 on these sentences; ties go to the
    point nearest the untuned default (1/3, 0.5). Returns (weight, threshold, micro-F1)."""
    best = None
    for weight in WEIGHT_GRID:
        for threshold in THRESHOLD_GRID:
            f1 = _micro_f1(combined.combine(prior, votes, float(weight), float(threshold)), gold_labels, taxonomy)
            key = (round(f1, 6), -abs(weight - 1 / 3) - abs(threshold - 0.5))
            if best is None or key > best[0]:
                best = (key, float(weight), float(threshold), f1)
    return best[1], best[2], best[3]


def tune_combination(combined, prior: list[Labelled], votes: list[Labelled], gold_labels: list[list[str]],
                     taxonomy: Taxonomy, folds: int = 5, seed: int = 0) -> dict:
    """Choose the weight and threshold on all of the tuning gold, and estimate how well that choice does on
    sentences it was not chosen on (k-fold: choose on k-1 folds, score the held-out fold)."""
    weight, threshold, fitted = choose_combination(combined, prior, votes, gold_labels, taxonomy)
    order = np.random.default_rng(seed).permutation(len(gold_labels))
    held_out: list[Labelled | None] = [None] * len(gold_labels)
    for fold in range(folds):
        test = set(order[fold::folds].tolist())
        train = [i for i in range(len(gold_labels)) if i not in test]
        w, t, _ = choose_combination(combined, [prior[i] for i in train], [votes[i] for i in train],
                                     [gold_labels[i] for i in train], taxonomy)
        for i in test:
            held_out[i] = combined.combine([prior[i]], [votes[i]], w, t)[0]
    return {"weight": weight, "threshold": threshold, "tune_micro_f1": round(fitted, 4),
            "tune_cv_micro_f1": round(_micro_f1(held_out, gold_labels, taxonomy), 4), "tune_sentences": len(gold_labels)}


def evaluate_strategies(gold: Rows, names: list[str], taxonomy: Taxonomy, ctx: StageContext | None,
                        limit: int | None = None, exemplars: Rows | None = None,
                        tune: bool = False) -> tuple[dict, dict[str, list]]:
    """Label the gold sentences with each strategy; an LLM strategy used by a combination runs once.

    Few-shot and embedding exemplars come from `exemplars` (e.g. gold train, scoring the test split), or
    else from the scored gold itself, leave-one-out. With `tune`, each embedding+X combination's weight and
    threshold are chosen on the exemplar gold (its own LLM labels, embedding leave-one-out), never on the
    scored sentences."""
    source = exemplars if exemplars is not None else gold
    if tune and exemplars is None:
        raise FactoryError("--tune chooses combination weights on --exemplars (gold train): pass it")
    tuned: dict[str, dict] = {}
    sample = gold.subset(range(min(limit or len(gold), len(gold))))
    cache: dict[str, list[Labelled]] = {}
    seconds: dict[str, float] = {}

    def outcomes(name: str) -> list[Labelled]:
        if name not in cache:
            started = time.perf_counter()
            if name.startswith("embedding+"):
                combined = build_strategy(name, taxonomy, source)
                if tune:
                    llm = label_texts(source.texts, combined.llm, ctx)
                    tuned[name] = tune_combination(combined, label_texts(source.texts, combined.embedding, None), llm,
                                                   source.labels, taxonomy)
                    combined.weight, combined.threshold = tuned[name]["weight"], tuned[name]["threshold"]
                cache[name] = combined.combine(outcomes("embedding"), outcomes(combined.llm.name))
            else:
                strategy = build_strategy(name, taxonomy, source)
                if name in LLM_STRATEGIES and ctx is None:
                    raise FactoryError(f"strategy {name} needs the LLM")
                cache[name] = label_texts(sample.texts, strategy, ctx)
            seconds[name] = time.perf_counter() - started
        return cache[name]

    results, predictions = {}, {}
    for name in names:
        labelled = outcomes(name)
        predictions[name] = [o.labels for o in labelled]
        results[name] = {**score_against_gold(predictions[name], sample.labels, taxonomy),
                         **confidence_against_gold(labelled, sample.labels),
                         "seconds": round(seconds.get(name, 0.0), 1), **tuned.get(name, {})}
    return results, {"text": sample.texts, "gold": sample.labels, **predictions}


def strategies_markdown(results: dict, model_name: str, gold_path: str, sentences: int) -> str:
    lines = [f"Labelling strategies on {sentences} gold sentences ({gold_path}), LLM: {model_name}", "",
             "| strategy | micro-F1 | macro-F1 | micro-P | micro-R | binary F1 | labels/sentence (gold) | 'none' rate | failed "
             "| LLM confidence: ECE, AUROC (exact match) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        if "weight" in r:
            name = f"{name} (w={r['weight']:.2f}, t={r['threshold']:.2f}; tune CV {r['tune_cv_micro_f1']:.3f})"
        lines.append(f"| {name} | {r['micro_f1']:.3f} | {r['macro_f1']:.3f} | {r['micro_precision']:.3f} | "
                     f"{r['micro_recall']:.3f} | {r['binary_f1']:.3f} | {r['mean_labels_predicted']:.2f} "
                     f"({r['mean_labels_gold']:.2f}) | {r['none_rate_predicted']:.2f} | {r['failed']} | {_confidence_cell(r)} |")
    return "\n".join(lines) + "\n"


def _confidence_cell(result: dict) -> str:
    if "confidence_ece" not in result:
        return "—"
    auroc = "n/a" if result["confidence_auroc"] is None else f"{result['confidence_auroc']:.3f}"
    return (f"{result['confidence_ece']:.3f}, {auroc} (mean {result['confidence_mean']:.2f}, "
            f"right {result['exact_match']:.2f})")


STRATEGY_FILES = frozenset({"strategies.json", "strategies.md", "predictions.parquet"})


def _is_legacy_strategies(folder: Path) -> bool:
    """A strategies folder written before it had a marker: nothing but its three files."""
    return folder.is_dir() and {p.name for p in folder.iterdir()} <= STRATEGY_FILES


STRATEGIES_WRITER = Writer("quality strategies", own_files=STRATEGY_FILES, legacy=_is_legacy_strategies)


def write_strategy_results(out_dir: Path, results: dict, predictions: dict, markdown: str, meta: dict) -> Path:
    """`strategies/` (often inside the run folder the strategies labelled in) written whole: a rerun replaces
    it, a kill leaves the earlier one, and a folder holding files of others is refused untouched."""
    import polars as pl

    frame = pl.DataFrame({k: (v if k in ("text",) else [json.dumps(x) for x in v]) for k, v in predictions.items()})
    return write_report(Path(out_dir), STRATEGIES_WRITER, {"strategies.json": {**meta, "results": results},
                                                           "strategies.md": markdown, "predictions.parquet": frame})


def evaluate_checker(gold: Rows, taxonomy: Taxonomy, ctx: StageContext, limit: int | None = None,
                     seed: int = 0) -> dict:
    """How far the verifier (`check`) agrees with gold: every sentence is judged twice, once with its gold
    labels (should be accepted) and once with one category gold does not give it (should be rejected). The
    judging is the check stage itself, run in a scratch run folder on ctx's engine."""
    from factory.data.store import read_dataset, shard_paths
    from factory.stages.context import scratch_context
    from factory.stages.runner import run_stage
    from factory.stages.verify import CheckTask

    sample = gold.subset(range(min(limit or len(gold), len(gold))))
    rng = np.random.default_rng(seed)
    judged = []
    for i, (text, labels) in enumerate(zip(sample.texts, sample.labels)):
        others = [c for c in taxonomy.category_ids if c not in labels]
        wrong = others[int(rng.integers(len(others)))]
        judged += [{"row_id": f"{i}:gold", "source": "gold", "text": text, "labels": list(labels)},
                   {"row_id": f"{i}:wrong", "source": "gold", "text": text, "labels": [wrong]}]
    task = CheckTask("silver", taxonomy, judged)  # judged as the label stage's labels are
    started = time.perf_counter()
    with scratch_context(ctx) as scratch:
        run_stage(task, scratch)
        folder = scratch.run.out / task.stage
        checked = read_dataset(folder).to_dicts() if shard_paths(folder) else []
    verdict = {row["row_id"]: row["verdict"] for row in checked}  # a failed output has none
    with_gold = [verdict.get(f"{i}:gold") for i in range(len(sample))]
    with_wrong = [verdict.get(f"{i}:wrong") for i in range(len(sample))]
    accepted_right = float(np.mean([v == "accept" for v in with_gold]))
    rejected_wrong = float(np.mean([v == "reject" for v in with_wrong]))
    return {"sentences": len(with_gold), "accept_rate_gold_labels": round(accepted_right, 3),
            "reject_rate_wrong_label": round(rejected_wrong, 3),
            "balanced_accuracy": round((accepted_right + rejected_wrong) / 2, 3),
            "failed": sum(v is None for v in with_gold + with_wrong), "seconds": round(time.perf_counter() - started, 1)}
