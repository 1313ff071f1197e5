"""Click commands of the trainer side: `gold import`, `compare`, `train`, `predict`.

Registered in the main `bin/generate` group (factory/cli.py), which turns FactoryError into
"error: <message>" and exit code 2. These commands let FactoryError through and catch nothing else.
"""

from __future__ import annotations

from pathlib import Path

import click

from factory.cli.options import (SEED, ExistingDir, FiniteFloat, InputPath, NameOrFolder, OutFolder, RegularFile, SeedList,
                                 count)
from factory.core.errors import FactoryError
from factory.core.paths import CACHE_DIR

Positive = FiniteFloat(min=0, min_open=True)
GOLD_FOLDER = ExistingDir("gold folder", missing="no gold data in {path}; import it first with `gold import PATH`")


def _console():
    import sys

    from rich.console import Console

    # Logs and pipes get a wide console so the comparison tables are not wrapped at 80 columns.
    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _taxonomy(path: Path | None):
    from factory.data.taxonomy import load_taxonomy

    return load_taxonomy(path)


taxonomy_option = click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None,
                               help="Taxonomy JSON (default: schemas/taxonomy.json).")


def selection_options(command):
    """--no-select, --fixed-threshold and --negatives, shared by compare and train."""
    command = click.option("--negatives", type=InputPath("negatives", folder=True), default=None,
                           help="JSONL/CSV/Parquet of 'none' sentences added to gold train only (never to the test split), "
                                "e.g. data/demo/negatives.jsonl.")(command)
    command = click.option("--fixed-threshold", is_flag=True,
                           help="Decide every category at 0.5 instead of per-category thresholds chosen on CV folds "
                                "of gold train.")(command)
    command = click.option("--no-select", "no_select", is_flag=True,
                           help="Do not choose synthetic rows on CV folds of gold train (compare: no `-sel` sets; "
                                "train: all rows of the set).")(command)
    return command


@click.group(name="gold")
def gold() -> None:
    """Hand-labelled gold data."""


@gold.command(name="import")
@click.argument("path", type=RegularFile("gold file"), required=False)
@click.option("--from-review", "review_run", type=ExistingDir("run folder"), default=None,
              help="Instead of a file: promote the silver rows of this run folder that clinicians accepted or corrected "
                   "(`review`) to gold, as train rows of the frozen split (rows reviewers disagree on are not promoted).")
@click.option("--text-column", default="text", show_default=True, help="Column holding the sentence.")
@click.option("--labels-column", default="labels", show_default=True,
              help="Column of category ids (JSON list or ';' '|' ',' separated). Without it, one 0/1 column per category id.")
@click.option("--out", type=OutFolder(), default=None,
              help="Gold folder (default: data/gold; with --from-review RUN, the run's own gold, RUN/gold).")
@taxonomy_option
def gold_import(path: Path | None, review_run: Path | None, text_column: str, labels_column: str, out: Path | None,
                taxonomy: Path | None) -> None:
    """Validate a CSV / Parquet / JSONL gold file and store it as contract Parquet (or, with --from-review RUN,
    add a run's reviewed silver rows to the gold there)."""
    from factory.data.gold import DEFAULT_GOLD_DIR, import_gold

    if (path is None) == (review_run is None):
        raise FactoryError("gold import takes a gold file PATH or --from-review RUN_DIR (one of them)")
    if review_run is not None:
        _promote(review_run, out or Path(review_run) / "gold", taxonomy)
        return
    out = out or DEFAULT_GOLD_DIR
    summary = import_gold(path, _taxonomy(taxonomy), out, text_column, labels_column)
    console = _console()
    console.print(f"read {summary.rows_read} rows from {path} (labels from {summary.label_format})", highlight=False)
    console.print(f"dropped {summary.empty_dropped} empty sentence(s) and {summary.duplicates_dropped} exact "
                  "duplicate(s) (same sentence, same labels)", highlight=False)
    if summary.unlabelled_as_none:
        console.print(f"[yellow]{summary.unlabelled_as_none} row(s) had 0 in every category column and were stored "
                      "as 'none'[/]")
    counts = ", ".join(f"{k} {v}" for k, v in summary.label_counts.most_common())
    console.print(f"wrote {summary.rows_written} gold sentences to {out}/ ({counts})", highlight=False)
    if summary.stale_split:
        console.print(f"[yellow]note:[/] {summary.stale_split} was made for different gold data; "
                      "the next `compare` needs --resplit (its results will not be comparable with earlier ones)")


def _promote(run_dir: Path, out: Path, taxonomy: Path | None) -> None:
    from factory.data.promote import PROMOTED_FILE, promote_reviewed

    s = promote_reviewed(run_dir, out, _taxonomy(taxonomy))
    console = _console()
    if s.split_created:
        console.print(f"froze a test split on the {s.gold_before} gold sentences there first ({out}/split.json)",
                      highlight=False)
    console.print(f"{s.reviewed} reviewed silver row(s) in {run_dir}: {s.promoted} promoted to gold, "
                  f"{s.already_gold} already in gold, {s.rejected} rejected by a reviewer, {s.disagreed} not promoted "
                  "because reviewers disagree", highlight=False)
    by = ", ".join(f"{name} {n}" for name, n in sorted(s.reviewers.items())) or "none"
    console.print(f"gold {s.gold_before} -> {s.gold_after} sentences in {out}/ (promoted rows are train; the "
                  f"{s.test_rows} test rows are unchanged); reviewers: {by} (recorded in {PROMOTED_FILE})",
                  highlight=False)


@click.command(name="compare")
@click.option("--gold", "gold_dir", type=GOLD_FOLDER, default=None, help="Gold folder (default: data/gold).")
@click.option("--silver", "silver_dirs", type=ExistingDir("silver folder"), multiple=True,
              help="Silver shard folder (repeatable).")
@click.option("--bronze", "bronze_dirs", type=ExistingDir("bronze folder"), multiple=True,
              help="Bronze shard folder (repeatable).")
@click.option("--sets", default="gold,silver,bronze,gold+silver,gold+bronze,gold+silver+bronze", show_default=True,
              help="Training sets to compare; sets without data are skipped with a note. `reviewed` is silver rows "
                   "clinicians accepted or corrected, with the reviewed labels (e.g. gold+reviewed).")
@click.option("--synthetic-cap-ratio", type=Positive, default=None, help="Cap synthetic rows at K x gold train size.")
@click.option("--synthetic-weight", type=Positive, default=1.0, show_default=True,
              help="Sample weight of synthetic rows relative to gold.")
@click.option("--seeds", type=SeedList(), default="0,1,2", show_default=True)
@click.option("--models", default="tfidf,encoder", show_default=True, help="tfidf and/or encoder.")
@click.option("--encoder", type=NameOrFolder("encoder"), default=None,
              help="A catalogue embedder (`bin/generate models`, e.g. all-mpnet-base-v2) or a local HF encoder "
                   "folder (default: all-MiniLM-L6-v2, installed with the package).")
@click.option("--finetune", is_flag=True, help="Fine-tune the encoder (minutes per fit) instead of a frozen-embedding head.")
@click.option("--epochs", type=count(), default=3, show_default=True, help="Fine-tuning epochs.")
@click.option("--split-seed", type=SEED, default=None, help="Seed of a NEW gold test split (default 0).")
@click.option("--test-fraction", type=FiniteFloat(min=0, max=1, min_open=True, max_open=True), default=None, help="Test fraction of a NEW split (default 0.2).")
@click.option("--resplit", is_flag=True, help="Replace the frozen test split (results stop being comparable).")
@click.option("--save-models", is_flag=True,
              help="Save every trained model under OUT/models/ for `predict` (fine-tuned ones are ~90 MB each).")
@click.option("--out", type=OutFolder(), default=None,
              help="Report folder: new, empty, or an earlier `compare` output, which is replaced whole "
                   "(default: data/experiments/<timestamp>-<random>).")
@click.option("--cache-dir", type=OutFolder(), default=CACHE_DIR, show_default=True, help="Embedding and dataset cache.")
@click.option("--silver-min-agreement", type=FiniteFloat(min=0, max=1), default=None,
              help="Train only on silver rows whose self-consistency majority equals the silver label with at least "
                   "this agreement (needs `consistency`).")
@click.option("--drop-rejected", is_flag=True, help="Leave out silver/bronze rows the verifier rejected (needs `check`).")
@click.option("--drop-duplicates", is_flag=True, help="Leave out bronze rows flagged as duplicates (needs `dedup`).")
@selection_options
@taxonomy_option
def compare(gold_dir, silver_dirs, bronze_dirs, sets, synthetic_cap_ratio, synthetic_weight, seeds, models, encoder,
            finetune, epochs, split_seed, test_fraction, resplit, save_models, out, cache_dir, silver_min_agreement,
            drop_rejected, drop_duplicates, no_select, fixed_threshold, negatives, taxonomy) -> None:
    """Train on gold / silver / bronze and their mixtures; score all on the frozen gold test split.

    Each gold+synthetic set also runs as `<set>-sel`: the synthetic rows (filter, cap, weight per source)
    chosen on 5-fold cross-validation over gold train, kept only where they raise CV micro-F1 without
    lowering any category's CV F1 by more than 0.05. Per-category thresholds are chosen on the same folds.
    The frozen test split chooses nothing."""
    from factory.data.output_folder import claim_output_folder
    from factory.trainer.compare import (COMPARE_WRITER, CompareOptions, default_out_dir, parse_models, parse_seeds,
                                         parse_sets, run_compare)
    from factory.data.gold import DEFAULT_GOLD_DIR
    from factory.trainer.report import write_report

    options = CompareOptions(
        gold_dir=gold_dir or DEFAULT_GOLD_DIR, out_dir=out or default_out_dir(),
        silver_dirs=list(silver_dirs), bronze_dirs=list(bronze_dirs), sets=parse_sets(sets),
        models=parse_models(models), seeds=parse_seeds(seeds), synthetic_cap_ratio=synthetic_cap_ratio,
        synthetic_weight=synthetic_weight, encoder=encoder, finetune=finetune, epochs=epochs,
        save_models=save_models, split_seed=split_seed, test_fraction=test_fraction, resplit=resplit,
        cache_dir=cache_dir, silver_min_agreement=silver_min_agreement, drop_rejected=drop_rejected,
        drop_duplicates=drop_duplicates, select=not no_select, tune_thresholds=not fixed_threshold, negatives=negatives,
    )
    console = _console()
    with claim_output_folder(options.out_dir, COMPARE_WRITER) as folder:  # refused before any training
        result = run_compare(options, _taxonomy(taxonomy), console, into=folder.build)
        write_report(result, console, into=folder.build)


@click.command(name="train")
@click.option("--set", "set_name", default="gold", show_default=True, help="One training set, e.g. gold+silver.")
@click.option("--model", "family", default="tfidf", show_default=True, help="tfidf or encoder.")
@click.option("--seed", type=SEED, default=0, show_default=True)
@click.option("--gold", "gold_dir", type=GOLD_FOLDER, default=None, help="Gold folder (default: data/gold).")
@click.option("--silver", "silver_dirs", type=ExistingDir("silver folder"), multiple=True,
              help="Silver shard folder (repeatable).")
@click.option("--bronze", "bronze_dirs", type=ExistingDir("bronze folder"), multiple=True,
              help="Bronze shard folder (repeatable).")
@click.option("--synthetic-cap-ratio", type=Positive, default=None, help="Cap synthetic rows at K x gold train size.")
@click.option("--synthetic-weight", type=Positive, default=1.0, show_default=True)
@click.option("--encoder", type=NameOrFolder("encoder"), default=None,
              help="A catalogue embedder (`bin/generate models`, e.g. all-mpnet-base-v2) or a local HF encoder "
                   "folder (default: all-MiniLM-L6-v2, installed with the package).")
@click.option("--finetune", is_flag=True, help="Fine-tune the encoder instead of a frozen-embedding head.")
@click.option("--epochs", type=count(), default=3, show_default=True)
@click.option("--out", type=OutFolder(), required=True, help="Model folder to write (for `predict --model`): new or empty.")
@click.option("--replace", is_flag=True,
              help="Replace a model `train` saved earlier in --out (the new one is built beside it, then swapped in); "
                   "a folder anything else wrote is never replaced.")
@click.option("--cache-dir", type=OutFolder(), default=CACHE_DIR, show_default=True)
@selection_options
@taxonomy_option
def train(set_name, family, seed, gold_dir, silver_dirs, bronze_dirs, synthetic_cap_ratio, synthetic_weight, encoder,
          finetune, epochs, out, replace, cache_dir, no_select, fixed_threshold, negatives, taxonomy) -> None:
    """Train one classifier on the gold train split (+ synthetic), score it on the frozen test split, save it.

    A gold+synthetic set takes the synthetic rows chosen on CV folds of gold train (as `compare`'s `-sel`
    sets; --no-select takes them all), and the model keeps per-category thresholds chosen on the same folds
    (meta.json), which `predict` uses."""
    from factory.data.output_folder import check_output_folder, claim_output_folder
    from factory.trainer.compare import (TRAIN_WRITER, CompareOptions, choose_on_gold_train, fit_and_score, model_name,
                                         parse_models, parse_sets, prepare_data, save_model)
    from factory.trainer.selection import SELECTED_SUFFIX
    from factory.data.gold import DEFAULT_GOLD_DIR

    sets, (family,) = parse_sets(set_name), parse_models(family)
    if len(sets) != 1:
        raise FactoryError("train takes one training set (--set gold+silver); use compare for several")
    options = CompareOptions(
        gold_dir=gold_dir or DEFAULT_GOLD_DIR, out_dir=out, silver_dirs=list(silver_dirs), bronze_dirs=list(bronze_dirs),
        sets=sets, models=[family], seeds=[seed], synthetic_cap_ratio=synthetic_cap_ratio,
        synthetic_weight=synthetic_weight, encoder=encoder, finetune=finetune, epochs=epochs, cache_dir=cache_dir,
        select=not no_select, tune_thresholds=not fixed_threshold, negatives=negatives,
    )
    check_output_folder(out, TRAIN_WRITER, replace)  # before any data is read or model trained
    tax = _taxonomy(taxonomy)
    data = prepare_data(options, tax)
    if not data.sets or data.sets[0] != sets[0]:
        raise FactoryError("; ".join(data.notes))
    target = data.sets[-1]  # the selected variant when there is one
    data.sets = [target]
    console = _console()
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        selection = choose_on_gold_train(options, data, tax, progress)
        model, rows, scores, seconds = fit_and_score(family, target, seed, options, data, tax.category_ids, progress)
    with claim_output_folder(out, TRAIN_WRITER, replace) as folder:
        save_model(model, folder.build, options, data, tax, target, model_name(family, finetune), seed, rows, scores)
    by_scope = {s["category"]: s["f1"] for s in scores}
    if target.endswith(SELECTED_SUFFIX):
        for (_, role), choice in selection.choices.items():
            console.print(f"{role}: kept {choice.rows_kept} of {choice.rows_total} rows ({choice.setting.describe()}): "
                          f"{choice.reason}", highlight=False)
    console.print(f"trained {model_name(family, finetune)} on {target} ({len(rows)} sentences, {seconds:.1f} s); "
                  f"gold test micro-F1 {by_scope['micro']:.3f}, macro-F1 {by_scope['macro']:.3f}, "
                  f"binary F1 {by_scope['binary']:.3f}; saved to {out}", highlight=False)


@click.command(name="predict")
@click.option("--model", "model_dir", type=ExistingDir("model folder"), required=True, help="Saved model folder (compare --save-models).")
@click.option("--input", "input_path", type=InputPath("input", folder=True), required=True,
              help="A .txt file or folder (one sentence per line unless --notes), or CSV / Parquet / JSONL.")
@click.option("--notes", "as_notes", is_flag=True,
              help="The input is notes (as for `label --notes`): split them into sentences and keep note ids and offsets.")
@click.option("--text-column", default="text", show_default=True)
@click.option("--id-column", default=None, help="--notes tables: column holding the note id (default: row number).")
@click.option("--out", type=OutFolder(), default=None,
              help="Output folder: new or empty (default: data/predictions/<timestamp>-<random>).")
@click.option("--replace", "--overwrite", "replace", is_flag=True,
              help="Replace an earlier `predict` output in --out (built beside it, then swapped in); nothing else is "
                   "ever replaced. --overwrite is the older name.")
@click.option("--cache-dir", type=OutFolder(), default=CACHE_DIR, show_default=True)
def predict(model_dir, input_path, as_notes, text_column, id_column, out, replace, cache_dir) -> None:
    """Label sentences with a trained classifier; writes Parquet with labels and per-category scores."""
    from factory.trainer.predict import default_out_dir, predict as run_predict

    target, frame = run_predict(model_dir, input_path, out or default_out_dir(), text_column, cache_dir,
                                notes=as_notes, id_column=id_column, overwrite=replace)
    positives = frame.filter(~pl_is_none(frame)).height
    _console().print(f"labelled {frame.height} sentence(s), {positives} AD-related; wrote {target}", highlight=False)


def pl_is_none(frame):
    import polars as pl

    return pl.col("labels").list.first() == "none"
