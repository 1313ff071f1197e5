"""Train every (training set x model x seed) combination and score all of them on the same frozen gold
test split, so gold, silver, bronze and their mixtures are compared like for like.

Before any model is scored on the test split, factory.trainer.selection chooses on cross-validation folds
of gold train which synthetic rows to keep (the `-sel` training sets, next to the raw ones) and every
output's decision threshold. The test split chooses nothing.

One walk: gold, its fingerprint, the test subset and its target matrix are computed once; every dataset
folder is read once (its side tables are matched against the rows already read).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.rows import (SYNTHETIC_SOURCES, LeakageReport, Rows, dataset_to_rows, load_contract_dataset,
                                normalise_text, remove_test_leakage)
from factory.core.errors import FactoryError
from factory.data.gold import gold_fingerprint, load_gold, read_negatives
from factory.data.output_folder import Writer, unique_default
from factory.data.reviews import consensus, current_decisions
from factory.trainer.metrics import DEFAULT_THRESHOLD, evaluate, summarise
from factory.core.paths import CACHE_DIR, DATA_DIR
from factory.data.split import Split, load_or_create_split
from factory.data.taxonomy import Taxonomy
from factory.trainer.classifiers import MODEL_FAMILIES, build_model, resolve_encoder, target_matrix
from factory.trainer.selection import SELECTED_SUFFIX, THRESHOLD_RULE, Selection, cv_json, run_selection

DEFAULT_SETS = ("gold", "silver", "bronze", "gold+silver", "gold+bronze", "gold+silver+bronze")
DEFAULT_EXPERIMENTS_DIR = DATA_DIR / "experiments"
MINORITY_COUNT = 3  # categories with the lowest gold support, where the paper reports the largest gains
NEGATIVES_SOURCE = "negatives"  # in-memory source of --negatives rows (gold-train 'none' sentences)
REVIEWED = "reviewed"  # in-memory source: silver rows clinicians accepted (their labels) or corrected (new labels)
SET_PARTS = ("gold", *SYNTHETIC_SOURCES, REVIEWED)  # what a training set name combines, in canonical order
TRAINING_SOURCES = (*SYNTHETIC_SOURCES, REVIEWED)  # the non-gold parts, each a key of PreparedData.synthetic


def parse_sets(text: str) -> list[str]:
    """Raw training sets; the selected variants (`gold+silver-sel`) are added by `compare` itself."""
    sets: list[str] = []
    for name in (s.strip() for s in text.split(",")):
        parts = name.split("+")
        if not name or any(p not in SET_PARTS for p in parts) or len(set(parts)) != len(parts):
            raise FactoryError(f"unknown training set {name!r}; combine gold, silver, bronze and reviewed (silver rows "
                               "clinicians accepted or corrected) with '+', e.g. gold+silver or gold+reviewed")
        canonical = "+".join(p for p in SET_PARTS if p in parts)
        if canonical not in sets:
            sets.append(canonical)
    return sets


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise FactoryError(f"--seeds must be comma-separated integers, got {text!r}") from None
    if not seeds:
        raise FactoryError("--seeds needs at least one seed")
    return list(dict.fromkeys(seeds))


def parse_models(text: str) -> list[str]:
    models = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODEL_FAMILIES]
    if unknown or not models:
        raise FactoryError(f"unknown model(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(MODEL_FAMILIES)}")
    return list(dict.fromkeys(models))


def default_out_dir() -> Path:
    return unique_default(DEFAULT_EXPERIMENTS_DIR)


REPORT_FILES = frozenset({"report.md", "report.html", "metrics.csv", "metrics.parquet", "summary.csv", "summary.parquet",
                          "leakage_removed.csv", "f1_by_category.png", "config.json", "models"})
MODEL_FILES = frozenset({"meta.json", "model.joblib", "head.joblib", "calibrators.joblib", "head.pt", "encoder"})


def _json_with(path: Path, keys: tuple[str, ...]) -> bool:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(value, dict) and all(k in value for k in keys)


def _is_legacy_report(folder: Path) -> bool:
    """A comparison written before markers: only its own files, and a config.json only compare writes."""
    names = {p.name for p in folder.iterdir()}
    return names <= REPORT_FILES and _json_with(folder / "config.json", ("gold_dir", "sets_run", "gold_fingerprint"))


def _is_legacy_model(folder: Path) -> bool:
    """A model `train` saved before markers: only model files, and meta.json as save_model writes it."""
    names = {p.name for p in folder.iterdir()}
    return names <= MODEL_FILES and _json_with(folder / "meta.json", ("kind", "outputs", "training_set"))


# A comparison is a report recipes rerun into the same folder: a rerun replaces it. A trained model is
# loaded by `predict`: it is replaced only with --replace.
COMPARE_WRITER = Writer("compare", legacy=_is_legacy_report)
TRAIN_WRITER = Writer("train", needs_replace=True, legacy=_is_legacy_model)


@dataclass
class CompareOptions:
    gold_dir: Path
    out_dir: Path
    silver_dirs: list[Path] = field(default_factory=list)
    bronze_dirs: list[Path] = field(default_factory=list)
    sets: list[str] = field(default_factory=lambda: list(DEFAULT_SETS))
    models: list[str] = field(default_factory=lambda: ["tfidf", "encoder"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    synthetic_cap_ratio: float | None = None
    synthetic_weight: float = 1.0
    encoder: Path | None = None
    finetune: bool = False
    epochs: int = 3
    save_models: bool = False
    split_seed: int | None = None
    test_fraction: float | None = None
    resplit: bool = False
    silver_min_agreement: float | None = None  # side table <run>/silver_consistency
    drop_rejected: bool = False  # side tables <run>/silver_check, <run>/bronze_check
    drop_duplicates: bool = False  # side table <run>/bronze_dedup
    cache_dir: Path | None = CACHE_DIR
    select: bool = True  # add the `-sel` sets: synthetic rows chosen on CV folds of gold train
    tune_thresholds: bool = True  # per-output thresholds chosen on CV folds (else 0.5)
    negatives: Path | None = None  # extra gold-train 'none' sentences (never in the test split)


@dataclass
class PreparedData:
    gold: Rows
    split: Split
    gold_train: Rows
    gold_test: Rows
    synthetic: dict[str, Rows]
    leakage: LeakageReport
    sets: list[str]
    notes: list[str]
    minority: list[str]
    gold_support: dict[str, int]
    negatives: Rows = field(default_factory=Rows)
    side_ok: dict[str, np.ndarray | None] = field(default_factory=dict)  # per synthetic row: no side table flags it
    y_test: np.ndarray | None = None
    selection: Selection | None = None
    review: dict = field(default_factory=dict)  # what clinician review decisions did to the training data


@dataclass
class CompareResult:
    options: CompareOptions
    data: PreparedData
    metrics: pl.DataFrame
    summary: pl.DataFrame
    model_names: list[str]
    seconds: float
    model_dirs: list[Path] = field(default_factory=list)


def model_name(family: str, finetune: bool) -> str:
    return "encoder-ft" if family == "encoder" and finetune else family


def prepare_data(opts: CompareOptions, taxonomy: Taxonomy) -> PreparedData:
    """Gold + frozen split, synthetic sources minus test leakage, and the sets that can actually be run."""
    _check_options(opts)
    gold = load_gold(opts.gold_dir, taxonomy, opts.cache_dir)
    split = load_or_create_split(gold, opts.gold_dir, taxonomy, opts.split_seed, opts.test_fraction, opts.resplit)
    gold_train, gold_test = gold.subset(split.train_indices(gold)), gold.subset(split.test_indices(gold))
    notes = []
    if split.created:
        notes.append(f"froze a new gold test split in {split.path} (seed {split.seed}, fraction {split.test_fraction})")
    review: dict = {"rejected": {}, "reviewed": 0, "reviewed_in_set": 0, "disagreed": 0}
    loaded = {role: load_synthetic(role, folders, taxonomy, opts, review)
              for role, folders in (("silver", opts.silver_dirs), ("bronze", opts.bronze_dirs))}
    for role in SYNTHETIC_SOURCES:
        notes += loaded[role][2]
    reviewed, promoted = _without_promoted(review.pop("rows", Rows()), gold_train)
    if promoted:  # `gold import --from-review` already made them gold: counting them twice would weigh them double
        notes.append(f"reviewed set: {promoted} reviewed row(s) already in gold train (promoted by `gold import "
                     "--from-review`) left out of it, so no row counts twice")
    # Synthetic rows never enter the test side; copies of test sentences are dropped from training.
    combined, leakage = remove_test_leakage(loaded["silver"][0] + loaded["bronze"][0] + reviewed, gold_test.texts)
    synthetic = {role: combined.subset(i for i, s in enumerate(combined.sources) if s == role) for role in TRAINING_SOURCES}
    side_ok = {REVIEWED: None}
    for role in SYNTHETIC_SOURCES:
        flagged = loaded[role][1]
        side_ok[role] = None if flagged is None else np.array([rid not in flagged for rid in synthetic[role].row_ids])
    review["reviewed_in_set"] = len(synthetic[REVIEWED])
    if review["reviewed"]:
        notes.append(f"reviewed set: {len(synthetic[REVIEWED])} silver row(s) clinicians accepted (with the LLM's labels) "
                     f"or corrected (with the corrected labels), of {review['reviewed']} reviewed; "
                     f"{review['disagreed']} where reviewers disagree left out")
    if leakage.total:
        notes.append(f"removed {leakage.total} synthetic sentence(s) equal to gold test sentences "
                     f"({', '.join(f'{k}: {v}' for k, v in sorted(leakage.removed.items()))})")
    negatives = Rows()
    if opts.negatives is not None:
        negatives, note = load_negatives(opts.negatives, taxonomy, gold)
        notes.append(note)
    runnable = []
    for name in opts.sets:
        missing = [p for p in name.split("+") if p != "gold" and not len(synthetic[p])]
        if missing:
            given = {"silver": opts.silver_dirs, "bronze": opts.bronze_dirs, REVIEWED: review["reviewed"]}
            why = [f"no {p} data {'left after leakage removal' if given[p] else 'given'}" if p != REVIEWED or given[p]
                   else "no reviewed silver rows (accepted or corrected in `bin/generate review`)" for p in missing]
            notes.append(f"skipped set {name}: {'; '.join(why)}")
        else:
            runnable.append(name)
            if opts.select and selectable(name):
                runnable.append(name + SELECTED_SUFFIX)
    if not runnable:
        raise FactoryError("none of the requested training sets has data; " + "; ".join(notes))
    support = gold.label_counts()
    gold_support = {cid: support.get(cid, 0) for cid in taxonomy.category_ids}
    minority = sorted(gold_support, key=lambda c: (gold_support[c], taxonomy.category_ids.index(c)))[:MINORITY_COUNT]
    return PreparedData(gold, split, gold_train, gold_test, synthetic, leakage, runnable, notes, minority, gold_support,
                        negatives, side_ok, target_matrix(gold_test.labels, taxonomy.category_ids), review=review)


def selectable(set_name: str) -> bool:
    """Selection tunes synthetic rows added to gold; synthetic-only sets, and sets with reviewed rows (chosen
    by clinicians already), stay raw."""
    parts = set_name.split("+")
    return "gold" in parts and len(parts) > 1 and REVIEWED not in parts


def load_negatives(path: Path, taxonomy: Taxonomy, gold: Rows) -> tuple[Rows, str]:
    """--negatives: 'none' sentences added to gold train only; any equal to a gold sentence is left out."""
    rows = read_negatives(Path(path), taxonomy)
    gold_keys = {normalise_text(t) for t in gold.texts}
    keep = [i for i, t in enumerate(rows.texts) if normalise_text(t) not in gold_keys]
    left_out = len(rows) - len(keep)
    rows = rows.subset(keep)
    rows.sources = [NEGATIVES_SOURCE] * len(rows)
    return rows, (f"added {len(rows)} 'none' sentence(s) from {path} to gold train only (never to the test split)"
                  + (f"; {left_out} equal to a gold sentence left out" if left_out else ""))


def load_synthetic(role: str, folders: list[Path], taxonomy: Taxonomy, opts: CompareOptions,
                   review: dict | None = None) -> tuple[Rows, set[str] | None, list[str]]:
    """(rows, row ids a side table flags or None when no side table exists, notes), each folder read once.

    The quality side tables beside each folder (in its run folder) are matched against the rows as read.
    The user's filters (--drop-rejected, --silver-min-agreement, --drop-duplicates) leave rows out in memory
    here; the Parquet on disk is never changed. Without them the flags only feed selection's side-table
    settings. Rows a clinician rejected (`<run>/<role>_review/`) are always left out, and counted in
    `review["rejected"][role]`; for silver, the rows reviewers accepted or corrected (all of them alike) are
    added to `review["rows"]` with their reviewed labels (source "reviewed", the REVIEWED training set).
    """
    review = {"rejected": {}, "reviewed": 0, "disagreed": 0} if review is None else review
    from factory.data.side_tables import excluded_row_ids, side_flags

    rows, flagged, found, notes = Rows(), set(), False, []
    excluded: dict[str, set[str]] = {}
    for folder in folders:
        ds = load_contract_dataset(folder, role, taxonomy, opts.cache_dir)
        part = dataset_to_rows(ds, taxonomy)
        frame = pl.DataFrame({"row_id": ds["row_id"], "text": ds["text"], "labels": ds["labels"]},
                             schema={"row_id": pl.Utf8, "text": pl.Utf8, "labels": pl.List(pl.Utf8)})
        run_dir = Path(folder).resolve().parent
        # Every flag (and the error naming the command to run) comes from the side tables' own kinds.
        side = side_flags(run_dir, role, frame)
        if side is not None:
            found = True
            flagged |= side
        for reason, ids in excluded_row_ids(role, run_dir, frame, opts.silver_min_agreement, opts.drop_rejected,
                                            opts.drop_duplicates).items():
            excluded.setdefault(reason, set()).update(ids)
        decisions = current_decisions(run_dir, role, rows=frame)
        if decisions.height:
            verdicts = consensus(decisions)
            excluded.setdefault("reviewer rejected", set()).update(verdicts.rejected)
            review["rejected"][role] = review["rejected"].get(role, 0) + len(verdicts.rejected & set(part.row_ids))
            if role == "silver":
                review["reviewed"] += verdicts.reviewed
                review["disagreed"] += len(verdicts.disagreed - verdicts.rejected)
                keep = [i for i, row_id in enumerate(part.row_ids) if row_id in verdicts.agreed]
                agreed = part.subset(keep)
                agreed.labels = [taxonomy.normalise_labels(list(verdicts.agreed[r])) for r in agreed.row_ids]
                agreed.sources = [REVIEWED] * len(agreed)
                review["rows"] = review.get("rows", Rows()) + agreed
        rows = rows + part
    if excluded:
        dropped = set().union(*excluded.values())
        keep = [i for i, row_id in enumerate(rows.row_ids) if row_id not in dropped]
        why = ", ".join(f"{reason}: {len(ids & set(rows.row_ids))}" for reason, ids in excluded.items())
        notes.append(f"left out {len(rows) - len(keep)} of {len(rows)} {role} row(s) by quality filters ({why}); "
                     "nothing was deleted")
        rows = rows.subset(keep)
    return rows, (flagged if found else None), notes


def _check_options(opts: CompareOptions) -> None:
    if opts.synthetic_cap_ratio is not None and opts.synthetic_cap_ratio <= 0:
        raise FactoryError("--synthetic-cap-ratio must be positive")
    if opts.synthetic_weight <= 0:
        raise FactoryError("--synthetic-weight must be positive")
    if opts.silver_min_agreement is not None and not 0 <= opts.silver_min_agreement <= 1:
        raise FactoryError("--silver-min-agreement must be between 0 and 1")
    if opts.epochs < 1:
        raise FactoryError("--epochs must be at least 1")
    if "encoder" in opts.models:
        resolve_encoder(opts.encoder)  # fail before any data is loaded or model trained


def training_rows(data: PreparedData, set_name: str, cap_ratio: float | None, synthetic_weight: float,
                  seed: int, family: str | None = None) -> tuple[Rows, np.ndarray]:
    """Rows and sample weights of one training set (gold train, --negatives, synthetic).

    Raw sets: the synthetic cap (K x gold train size, over all synthetic sources of the set) is a seeded
    random sample, so different seeds also see different synthetic subsets. Selected sets (`-sel`): the
    rows and weight selection chose for this model family, the same for every seed.
    """
    selected = set_name.endswith(SELECTED_SUFFIX)
    parts = set_name.removesuffix(SELECTED_SUFFIX).split("+")
    gold = data.gold_train + data.negatives if "gold" in parts else Rows()
    synthetic, weights = Rows(), []
    for role in TRAINING_SOURCES:
        if role not in parts:
            continue
        if selected:
            if data.selection is None:
                raise ValueError(f"{set_name}: run selection first")
            kept, weight = data.selection.picked[(selection_family(family), role)]
            synthetic = synthetic + data.synthetic[role].subset(kept.tolist())
            weights += [weight] * len(kept)
        else:
            synthetic = synthetic + data.synthetic[role]
            weights += [synthetic_weight] * len(data.synthetic[role])
    if cap_ratio is not None and not selected:
        cap = int(cap_ratio * len(data.gold_train))
        if len(synthetic) > cap:
            keep = np.sort(np.random.default_rng(seed).choice(len(synthetic), size=cap, replace=False))
            synthetic = synthetic.subset(keep.tolist())
            weights = [weights[i] for i in keep]
    rows = gold + synthetic
    if not len(rows):
        raise FactoryError(f"training set {set_name} is empty after the synthetic cap; raise --synthetic-cap-ratio")
    return rows, np.concatenate([np.ones(len(gold)), np.asarray(weights, dtype=float)])


def selection_family(family: str | None) -> str:
    """The frozen family whose CV choices a model uses (the fine-tuned encoder borrows the frozen one's)."""
    return family if family in ("tfidf", "encoder") else "encoder"


def choose_on_gold_train(opts: CompareOptions, data: PreparedData, taxonomy: Taxonomy, progress=None) -> Selection:
    """Selection (when on), thresholds (unless --fixed-threshold) and calibrators, on CV folds of gold train;
    stored in data.selection. Every set is cross-validated: its calibrators come from its out-of-fold scores."""
    families = [selection_family(m) for m in opts.models]
    data.selection = run_selection(data.gold_train, data.negatives, data.synthetic, data.side_ok, taxonomy.category_ids,
                                   list(dict.fromkeys(families)), data.sets, opts.select, opts.encoder, opts.cache_dir,
                                   progress, tuned=opts.tune_thresholds)
    return data.selection


def row_counts(rows: Rows) -> dict[str, int]:
    return {f"n_{s}": rows.sources.count(s) for s in ("gold", NEGATIVES_SOURCE, *TRAINING_SOURCES)}


def run_compare(opts: CompareOptions, taxonomy: Taxonomy, console=None, into: Path | None = None) -> CompareResult:
    """`into`: where saved models are written (the folder being built); their recorded paths are under out_dir."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console(stderr=True)
    started = time.perf_counter()
    data = prepare_data(opts, taxonomy)
    for note in data.notes:
        console.print(f"[yellow]note:[/] {note}")
    cats = taxonomy.category_ids
    records: list[dict] = []
    model_dirs: list[Path] = []
    names = [model_name(m, opts.finetune) for m in opts.models]
    total = len(opts.models) * len(data.sets) * len(opts.seeds)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=True) as progress:
        choose_on_gold_train(opts, data, taxonomy, progress)
        fits = progress.add_task("training", total=total)
        for family, name in zip(opts.models, names):
            for set_name in data.sets:
                for seed in opts.seeds:
                    progress.update(fits, description=f"training {name} on {set_name} (seed {seed})")
                    model, rows, scores, fit_seconds = fit_and_score(family, set_name, seed, opts, data, cats, progress)
                    for score in scores:
                        records.append({"training_set": set_name, "model": name, "seed": seed, **score,
                                        **row_counts(rows), "fit_seconds": round(fit_seconds, 3)})
                    if opts.save_models:
                        folder = Path("models") / f"{set_name}__{name}__seed{seed}"
                        save_model(model, Path(into or opts.out_dir) / folder, opts, data, taxonomy, set_name, name, seed,
                                   rows, scores)
                        model_dirs.append(Path(opts.out_dir) / folder)
                    progress.advance(fits)
    metrics = pl.DataFrame(records)
    return CompareResult(opts, data, metrics, summarise(metrics), names, time.perf_counter() - started, model_dirs)


def cv_fitted(opts: CompareOptions, family: str) -> bool:
    """Whether the model is the one cross-validated (not the fine-tuned encoder, which keeps 0.5 uncalibrated)."""
    return not (opts.finetune and family == "encoder")


def model_thresholds(opts: CompareOptions, data: PreparedData, family: str, set_name: str):
    """Per-output thresholds chosen on CV for this family and set; 0.5 for the fine-tuned encoder."""
    if not opts.tune_thresholds or not cv_fitted(opts, family) or data.selection is None:
        return DEFAULT_THRESHOLD
    return data.selection.thresholds(family, set_name)


def set_decision(model, opts: CompareOptions, data: PreparedData, family: str, set_name: str) -> None:
    """Thresholds, calibrators (from the set's out-of-fold scores) and, with tuned thresholds, the cap on
    categories per sentence that gold train shows."""
    selection = data.selection if cv_fitted(opts, family) else None
    calibrators = selection.calibrators(family, set_name) if selection is not None else None
    capped = opts.tune_thresholds and selection is not None
    model.set_decision(model_thresholds(opts, data, family, set_name), calibrators,
                       selection.max_labels if capped else None)


def fit_and_score(family: str, set_name: str, seed: int, opts: CompareOptions, data: PreparedData,
                  cats: list[str], progress=None):
    """Fit one model on one training set and score it on the gold test split."""
    rows, weights = training_rows(data, set_name, opts.synthetic_cap_ratio, opts.synthetic_weight, seed, family)
    model = build_model(family, cats, seed, opts.encoder, opts.finetune, opts.epochs, opts.cache_dir)
    model.progress = progress
    set_decision(model, opts, data, family, set_name)
    started = time.perf_counter()
    model.fit(rows.texts, target_matrix(rows.labels, cats), weights)
    fit_seconds = time.perf_counter() - started
    y_test = data.y_test if data.y_test is not None else target_matrix(data.gold_test.labels, cats)
    scores = evaluate(y_test, model.predict_proba(data.gold_test.texts), cats, model.threshold, model.max_labels)
    return model, rows, scores, fit_seconds


def selection_meta(data: PreparedData, family: str, set_name: str) -> dict | None:
    """What selection chose for this model's sources (and why), for meta.json."""
    selection = data.selection
    if selection is None or not selection.folds:
        return None
    parts = set_name.removesuffix(SELECTED_SUFFIX).split("+")
    fam = selection_family(family)
    cv = selection.cv.get((fam, set_name))
    return {
        "threshold_rule": THRESHOLD_RULE,
        "threshold_choices": None if cv is None or not cv.choices else cv_json(cv, selection.categories)["threshold_choices"],
        "ece_out_of_fold": None if cv is None else cv_json(cv, selection.categories)["ece_out_of_fold"],
        "applied": set_name.endswith(SELECTED_SUFFIX),
        "chosen_on": f"{selection.folds}-fold CV over gold train (the test split chose nothing)",
        "sources": [c.to_json() for (f, role), c in selection.choices.items() if f == fam and role in parts]
        if set_name.endswith(SELECTED_SUFFIX) else [],
        "cv_micro_f1": None if cv is None else {"mean": round(cv.micro_mean, 4), "std": round(cv.micro_std, 4)},
    }


def save_model(model, folder: Path, opts, data, taxonomy, set_name, name, seed, rows, scores) -> Path:
    """Save weights plus what predict and an auditor need: training-data fingerprints and test metrics."""
    family = "encoder" if name.startswith("encoder") else name
    return model.save(folder, {
        "model_name": name,
        "training_set": set_name,
        "taxonomy": {"name": taxonomy.name, "version": taxonomy.version, "category_ids": taxonomy.category_ids},
        "training_data": {
            "fingerprint": gold_fingerprint(rows),
            "gold_fingerprint": data.split.fingerprint,
            "split": {"path": str(data.split.path), "seed": data.split.seed, "test_fraction": data.split.test_fraction},
            "silver_dirs": [str(p) for p in opts.silver_dirs],
            "bronze_dirs": [str(p) for p in opts.bronze_dirs],
            "negatives": str(opts.negatives) if opts.negatives else None,
            "rows": {s: rows.sources.count(s) for s in ("gold", NEGATIVES_SOURCE, *TRAINING_SOURCES)},
            "review": {k: v for k, v in data.review.items() if k != "rows"} or None,
            "synthetic_cap_ratio": opts.synthetic_cap_ratio,
            "synthetic_weight": opts.synthetic_weight,
        },
        "selection": selection_meta(data, family, set_name),
        "thresholds_chosen_on": ("CV folds of gold train" if np.ndim(model.raw_threshold) else "fixed"),
        "calibration": ("sigmoid (Platt) per output on out-of-fold CV scores over gold train; score_* and thresholds "
                        "are calibrated probabilities" if model.calibrators is not None else None),
        "metrics_on_gold_test": scores,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })


def _without_promoted(reviewed: Rows, gold_train: Rows) -> tuple[Rows, int]:
    """Reviewed rows minus those whose sentence gold train already holds; and how many were left out."""
    from factory.data.rows import normalise_text

    in_gold = {normalise_text(t) for t in gold_train.texts}
    keep = [i for i, t in enumerate(reviewed.texts) if normalise_text(t) not in in_gold]
    return reviewed.subset(keep), len(reviewed) - len(keep)
