"""`compare`, `train` and `predict` as functions of their specs (factory/core/specs.py): options to
CompareOptions, the output folder claimed before any training, the work, the result. The CLI only prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.specs import DEFAULT_GOLD_DIR, CompareSpec, PredictSpec, TrainingData, TrainSpec


def compare_options(spec: TrainingData, **more):
    from factory.trainer.compare import CompareOptions

    return CompareOptions(
        gold_dir=spec.gold or DEFAULT_GOLD_DIR, silver_dirs=list(spec.silver), bronze_dirs=list(spec.bronze),
        synthetic_cap_ratio=spec.synthetic_cap_ratio, synthetic_weight=spec.synthetic_weight, encoder=spec.encoder,
        finetune=spec.finetune, epochs=spec.epochs, cache_dir=spec.cache_dir, select=not spec.no_select,
        tune_thresholds=not spec.fixed_threshold, negatives=spec.negatives, **more)


def compare(spec: CompareSpec, console) -> None:
    """Every training set and classifier family, scored on the frozen gold test split; the report is written
    into the output folder, claimed (refused or replaced whole) before any training."""
    from factory.data.output_folder import claim_output_folder
    from factory.data.taxonomy import load_taxonomy
    from factory.trainer.compare import (COMPARE_WRITER, default_out_dir, parse_models, parse_seeds, parse_sets,
                                         run_compare)
    from factory.trainer.report import write_report

    options = compare_options(
        spec, out_dir=spec.out or default_out_dir(), sets=parse_sets(spec.sets), models=parse_models(spec.classifiers),
        seeds=parse_seeds(spec.seeds), save_models=spec.save_models, split_seed=spec.split_seed,
        test_fraction=spec.test_fraction, resplit=spec.resplit, silver_min_agreement=spec.silver_min_agreement,
        drop_rejected=spec.drop_rejected, drop_duplicates=spec.drop_duplicates)
    with claim_output_folder(options.out_dir, COMPARE_WRITER) as folder:  # refused before any training
        result = run_compare(options, load_taxonomy(spec.taxonomy), console, into=folder.build)
        write_report(result, console, into=folder.build)


@dataclass
class Trained:
    """What `train` did: the model's name, its training set, rows, seconds, test scores and selection."""

    model: str
    training_set: str
    rows: int
    seconds: float
    scores: dict[str, float]
    kept: list[str] = field(default_factory=list)  # one line per synthetic source the selection chose from


def train(spec: TrainSpec, console) -> Trained:
    """One classifier on gold train (+ the chosen synthetic rows), scored on the frozen test split, saved
    with its thresholds to spec.out (checked before any data is read, written whole at the end)."""
    from rich.progress import Progress

    from factory.data.output_folder import check_output_folder, claim_output_folder
    from factory.data.taxonomy import load_taxonomy
    from factory.trainer.compare import (TRAIN_WRITER, choose_on_gold_train, fit_and_score, model_name, parse_models,
                                         parse_sets, prepare_data, save_model)
    from factory.trainer.selection import SELECTED_SUFFIX

    sets, (family,) = parse_sets(spec.set_name), parse_models(spec.classifier)
    if len(sets) != 1:
        raise FactoryError("train takes one training set (--set gold+silver); use compare for several")
    options = compare_options(spec, out_dir=spec.out, sets=sets, models=[family], seeds=[spec.seed])
    check_output_folder(spec.out, TRAIN_WRITER, spec.replace)  # before any data is read or model trained
    taxonomy = load_taxonomy(spec.taxonomy)
    data = prepare_data(options, taxonomy)
    if not data.sets or data.sets[0] != sets[0]:
        raise FactoryError("; ".join(data.notes))
    target = data.sets[-1]  # the selected variant when there is one
    data.sets = [target]
    with Progress(console=console, transient=True) as progress:
        selection = choose_on_gold_train(options, data, taxonomy, progress)
        model, rows, scores, seconds = fit_and_score(family, target, spec.seed, options, data, taxonomy.category_ids,
                                                     progress)
    name = model_name(family, spec.finetune)
    with claim_output_folder(spec.out, TRAIN_WRITER, spec.replace) as folder:
        save_model(model, folder.build, options, data, taxonomy, target, name, spec.seed, rows, scores)
    kept = []
    if target.endswith(SELECTED_SUFFIX):
        kept = [f"{role}: kept {choice.rows_kept} of {choice.rows_total} rows ({choice.setting.describe()}): "
                f"{choice.reason}" for (_, role), choice in selection.choices.items()]
    return Trained(name, target, len(rows), seconds, {s["category"]: s["f1"] for s in scores}, kept)


def predict(spec: PredictSpec) -> tuple[Path, int, int]:
    """Label sentences with a saved classifier: (folder written, sentences, AD-related sentences)."""
    import polars as pl

    from factory.trainer.predict import default_out_dir, predict as run_predict

    target, frame = run_predict(spec.classifier_dir, spec.input, spec.out or default_out_dir(), spec.text_column,
                                spec.cache_dir, notes=spec.as_notes, id_column=spec.id_column, overwrite=spec.replace)
    positives = frame.filter(pl.col("labels").list.first() != "none").height
    return target, frame.height, positives
