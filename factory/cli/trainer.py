"""Click commands of the trainer side: `gold import`, `compare`, `train`, `predict`; the work is in
factory/api.py (gold import and promotion) and factory/trainer/train.py."""

from __future__ import annotations

import click

from factory import api
from factory.cli.options import command
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
    from factory.data.promote import PROMOTED_FILE

    done, out, say = api.gold_import(spec), spec.target(), _console().print
    if spec.from_review is not None:
        if done.split_created:
            say(f"froze a test split on the {done.gold_before} gold sentences there first ({out}/split.json)",
                highlight=False)
        say(f"{done.reviewed} reviewed silver row(s) in {spec.from_review}: {done.promoted} promoted to gold, "
            f"{done.already_gold} already in gold, {done.rejected} rejected by a reviewer, {done.disagreed} not "
            "promoted because reviewers disagree", highlight=False)
        by = ", ".join(f"{name} {n}" for name, n in sorted(done.reviewers.items())) or "none"
        say(f"gold {done.gold_before} -> {done.gold_after} sentences in {out}/ (promoted rows are train; the "
            f"{done.test_rows} test rows are unchanged); reviewers: {by} (recorded in {PROMOTED_FILE})", highlight=False)
        return
    say(f"read {done.rows_read} rows from {spec.path} (labels from {done.label_format})", highlight=False)
    say(f"dropped {done.empty_dropped} empty sentence(s) and {done.duplicates_dropped} exact duplicate(s) (same "
        "sentence, same labels)", highlight=False)
    if done.unlabelled_as_none:
        say(f"[yellow]{done.unlabelled_as_none} row(s) had 0 in every category column and were stored as 'none'[/]")
    counts = ", ".join(f"{k} {v}" for k, v in done.label_counts.most_common())
    say(f"wrote {done.rows_written} gold sentences to {out}/ ({counts})", highlight=False)
    if done.stale_split:
        say(f"[yellow]note:[/] {done.stale_split} was made for different gold data; the next `compare` needs "
            "--resplit (its results will not be comparable with earlier ones)")


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
