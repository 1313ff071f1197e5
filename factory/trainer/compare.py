"""Train every (training set x model x seed) combination and score all of them on the same frozen gold
test split, so gold, silver, bronze and their mixtures are compared like for like.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.rows import SYNTHETIC_SOURCES, LeakageReport, Rows, load_sources, remove_test_leakage
from factory.core.errors import FactoryError
from factory.data.gold import gold_fingerprint, load_gold
from factory.trainer.metrics import evaluate, summarise
from factory.core.paths import CACHE_DIR, DATA_DIR
from factory.data.split import Split, load_or_create_split
from factory.data.taxonomy import Taxonomy
from factory.trainer.classifiers import MODEL_FAMILIES, build_model, resolve_encoder, target_matrix

DEFAULT_SETS = ("gold", "silver", "bronze", "gold+silver", "gold+bronze", "gold+silver+bronze")
DEFAULT_EXPERIMENTS_DIR = DATA_DIR / "experiments"
MINORITY_COUNT = 3  # categories with the lowest gold support, where the paper reports the largest gains


def parse_sets(text: str) -> list[str]:
    sets: list[str] = []
    for name in (s.strip() for s in text.split(",")):
        parts = name.split("+")
        if not name or any(p not in ("gold", *SYNTHETIC_SOURCES) for p in parts) or len(set(parts)) != len(parts):
            raise FactoryError(f"unknown training set {name!r}; combine gold, silver and bronze with '+', e.g. gold+silver")
        canonical = "+".join(p for p in ("gold", *SYNTHETIC_SOURCES) if p in parts)
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
    return DEFAULT_EXPERIMENTS_DIR / datetime.now().strftime("%Y%m%d-%H%M%S")


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
    synthetic_raw = {
        "silver": load_sources(opts.silver_dirs, "silver", taxonomy, opts.cache_dir),
        "bronze": load_sources(opts.bronze_dirs, "bronze", taxonomy, opts.cache_dir),
    }
    synthetic_raw, filter_notes = apply_quality_filters(synthetic_raw, opts)
    notes += filter_notes
    # Synthetic rows never enter the test side; copies of test sentences are dropped from training.
    combined, leakage = remove_test_leakage(synthetic_raw["silver"] + synthetic_raw["bronze"], gold_test.texts)
    synthetic = {role: combined.subset(i for i, s in enumerate(combined.sources) if s == role) for role in SYNTHETIC_SOURCES}
    if leakage.total:
        notes.append(f"removed {leakage.total} synthetic sentence(s) equal to gold test sentences "
                     f"({', '.join(f'{k}: {v}' for k, v in sorted(leakage.removed.items()))})")
    runnable = []
    for name in opts.sets:
        missing = [p for p in name.split("+") if p != "gold" and not len(synthetic[p])]
        if missing:
            given = {"silver": opts.silver_dirs, "bronze": opts.bronze_dirs}
            why = [f"no {p} data {'left after leakage removal' if given[p] else 'given'}" for p in missing]
            notes.append(f"skipped set {name}: {'; '.join(why)}")
        else:
            runnable.append(name)
    if not runnable:
        raise FactoryError("none of the requested training sets has data; " + "; ".join(notes))
    support = gold.label_counts()
    gold_support = {cid: support.get(cid, 0) for cid in taxonomy.category_ids}
    minority = sorted(gold_support, key=lambda c: (gold_support[c], taxonomy.category_ids.index(c)))[:MINORITY_COUNT]
    return PreparedData(gold, split, gold_train, gold_test, synthetic, leakage, runnable, notes, minority, gold_support)


def apply_quality_filters(synthetic: dict[str, Rows], opts: CompareOptions) -> tuple[dict[str, Rows], list[str]]:
    """Leave out, in memory only, the rows the quality side tables flag (next to each --silver/--bronze
    folder, i.e. in its run folder); the Parquet on disk is never changed."""
    from factory.data.side_tables import excluded_row_ids

    notes = []
    for role, folders in (("silver", opts.silver_dirs), ("bronze", opts.bronze_dirs)):
        excluded: dict[str, set[str]] = excluded_row_ids(role, folders, opts.silver_min_agreement, opts.drop_rejected,
                                                         opts.drop_duplicates)
        if not excluded:
            continue
        dropped = set().union(*excluded.values())
        rows = synthetic[role]
        keep = [i for i, row_id in enumerate(rows.row_ids) if row_id not in dropped]
        synthetic[role] = rows.subset(keep)
        why = ", ".join(f"{reason}: {len(ids & set(rows.row_ids))}" for reason, ids in excluded.items())
        notes.append(f"left out {len(rows) - len(keep)} of {len(rows)} {role} row(s) by quality filters ({why}); "
                     "nothing was deleted")
    return synthetic, notes


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
                  seed: int) -> tuple[Rows, np.ndarray]:
    """Rows and sample weights of one training set.

    The synthetic cap (K x gold train size, over all synthetic sources of the set) is a seeded random
    sample, so different seeds also see different synthetic subsets.
    """
    parts = set_name.split("+")
    gold = data.gold_train if "gold" in parts else Rows()
    synthetic = Rows()
    for role in SYNTHETIC_SOURCES:
        if role in parts:
            synthetic = synthetic + data.synthetic[role]
    if cap_ratio is not None:
        cap = int(cap_ratio * len(data.gold_train))
        if len(synthetic) > cap:
            keep = np.sort(np.random.default_rng(seed).choice(len(synthetic), size=cap, replace=False))
            synthetic = synthetic.subset(keep.tolist())
    rows = gold + synthetic
    if not len(rows):
        raise FactoryError(f"training set {set_name} is empty after the synthetic cap; raise --synthetic-cap-ratio")
    weights = np.concatenate([np.ones(len(gold)), np.full(len(synthetic), synthetic_weight)])
    return rows, weights


def run_compare(opts: CompareOptions, taxonomy: Taxonomy, console=None) -> CompareResult:
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
        fits = progress.add_task("training", total=total)
        for family, name in zip(opts.models, names):
            for set_name in data.sets:
                for seed in opts.seeds:
                    progress.update(fits, description=f"training {name} on {set_name} (seed {seed})")
                    model, rows, scores, fit_seconds = fit_and_score(family, set_name, seed, opts, data, cats, progress)
                    counts = {f"n_{s}": rows.sources.count(s) for s in ("gold", *SYNTHETIC_SOURCES)}
                    for score in scores:
                        records.append({"training_set": set_name, "model": name, "seed": seed, **score, **counts,
                                        "fit_seconds": round(fit_seconds, 3)})
                    if opts.save_models:
                        folder = Path(opts.out_dir) / "models" / f"{set_name}__{name}__seed{seed}"
                        model_dirs.append(save_model(model, folder, opts, data, taxonomy, set_name, name, seed, rows, scores))
                    progress.advance(fits)
    metrics = pl.DataFrame(records)
    return CompareResult(opts, data, metrics, summarise(metrics), names, time.perf_counter() - started, model_dirs)


def fit_and_score(family: str, set_name: str, seed: int, opts: CompareOptions, data: PreparedData,
                  cats: list[str], progress=None):
    """Fit one model on one training set and score it on the gold test split."""
    rows, weights = training_rows(data, set_name, opts.synthetic_cap_ratio, opts.synthetic_weight, seed)
    model = build_model(family, cats, seed, opts.encoder, opts.finetune, opts.epochs, opts.cache_dir)
    model.progress = progress
    started = time.perf_counter()
    model.fit(rows.texts, target_matrix(rows.labels, cats), weights)
    fit_seconds = time.perf_counter() - started
    y_test = target_matrix(data.gold_test.labels, cats)
    scores = evaluate(y_test, model.predict_proba(data.gold_test.texts), cats, model.threshold)
    return model, rows, scores, fit_seconds


def save_model(model, folder: Path, opts, data, taxonomy, set_name, name, seed, rows, scores) -> Path:
    """Save weights plus what predict and an auditor need: training-data fingerprints and test metrics."""
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
            "rows": {s: rows.sources.count(s) for s in ("gold", *SYNTHETIC_SOURCES)},
            "synthetic_cap_ratio": opts.synthetic_cap_ratio,
            "synthetic_weight": opts.synthetic_weight,
        },
        "metrics_on_gold_test": scores,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
