"""Click commands of the trainer side: `gold import`, `compare`, `train`, `predict`; the work is in
factory/trainer/train.py and factory/data (gold, promotion). FactoryError becomes one `error:` line."""

from __future__ import annotations

import click

from factory.cli.options import command
from factory.core.errors import FactoryError
from factory.core.specs import CompareSpec, GoldImportSpec, PredictSpec, TrainSpec


def _console():
    import sys

    from rich.console import Console

    # Logs and pipes get a wide console so the comparison tables are not wrapped at 80 columns.
    return Console(stderr=True, width=None if sys.stderr.isatty() else 160)


@click.group(name="gold")
def gold() -> None:
    """Hand-labelled gold data."""


@command(GoldImportSpec, group=gold)
def gold_import(spec: GoldImportSpec) -> None:
    from factory.data.gold import import_gold
    from factory.data.taxonomy import load_taxonomy

    if (spec.path is None) == (spec.from_review is None):
        raise FactoryError("gold import takes a gold file PATH or --from-review RUN_DIR (one of them)")
    if spec.from_review is not None:
        return _promote(spec)
    summary = import_gold(spec.path, load_taxonomy(spec.taxonomy), spec.target(), spec.text_column, spec.labels_column)
    say = _console().print
    say(f"read {summary.rows_read} rows from {spec.path} (labels from {summary.label_format})", highlight=False)
    say(f"dropped {summary.empty_dropped} empty sentence(s) and {summary.duplicates_dropped} exact duplicate(s) (same "
        "sentence, same labels)", highlight=False)
    if summary.unlabelled_as_none:
        say(f"[yellow]{summary.unlabelled_as_none} row(s) had 0 in every category column and were stored as 'none'[/]")
    counts = ", ".join(f"{k} {v}" for k, v in summary.label_counts.most_common())
    say(f"wrote {summary.rows_written} gold sentences to {spec.target()}/ ({counts})", highlight=False)
    if summary.stale_split:
        say(f"[yellow]note:[/] {summary.stale_split} was made for different gold data; the next `compare` needs "
            "--resplit (its results will not be comparable with earlier ones)")


def _promote(spec: GoldImportSpec) -> None:
    from factory.data.promote import PROMOTED_FILE, promote_reviewed
    from factory.data.taxonomy import load_taxonomy

    out = spec.target()
    s = promote_reviewed(spec.from_review, out, load_taxonomy(spec.taxonomy))
    say = _console().print
    if s.split_created:
        say(f"froze a test split on the {s.gold_before} gold sentences there first ({out}/split.json)", highlight=False)
    say(f"{s.reviewed} reviewed silver row(s) in {spec.from_review}: {s.promoted} promoted to gold, {s.already_gold} "
        f"already in gold, {s.rejected} rejected by a reviewer, {s.disagreed} not promoted because reviewers disagree",
        highlight=False)
    by = ", ".join(f"{name} {n}" for name, n in sorted(s.reviewers.items())) or "none"
    say(f"gold {s.gold_before} -> {s.gold_after} sentences in {out}/ (promoted rows are train; the {s.test_rows} test "
        f"rows are unchanged); reviewers: {by} (recorded in {PROMOTED_FILE})", highlight=False)


@command(CompareSpec)
def compare(spec: CompareSpec) -> None:
    from factory.trainer.train import compare as run_compare

    run_compare(spec, _console())


@command(TrainSpec)
def train(spec: TrainSpec) -> None:
    from factory.trainer.train import train as run_train

    console = _console()
    done = run_train(spec, console)
    for line in done.kept:
        console.print(line, highlight=False)
    console.print(f"trained {done.model} on {done.training_set} ({done.rows} sentences, {done.seconds:.1f} s); "
                  f"gold test micro-F1 {done.scores['micro']:.3f}, macro-F1 {done.scores['macro']:.3f}, "
                  f"binary F1 {done.scores['binary']:.3f}; saved to {spec.out}", highlight=False)


@command(PredictSpec)
def predict(spec: PredictSpec) -> None:
    from factory.trainer.train import predict as run_predict

    target, sentences, positives = run_predict(spec)
    _console().print(f"labelled {sentences} sentence(s), {positives} AD-related; wrote {target}", highlight=False)
