"""`label` and `synthesize`: the two directions of data generation (silver and bronze)."""

from __future__ import annotations

import itertools
from pathlib import Path

import click

from factory.stages.strategies import STRATEGIES as STRATEGY_NAMES

from factory.cli.options import (FiniteFloat, InputPath, check_scale_out, count, engine_options,
                                 ray_options, report_stage, stage_context, warn_shared_leading_tokens)
from factory.core.errors import FactoryError

@click.command()
@click.option("--notes", type=InputPath("notes", folder=True), required=True,
              help="A folder of .txt notes, or a .txt / .csv / .parquet / .jsonl file.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note text (tables).")
@click.option("--id-column", default=None, help="Column holding the note id (tables; default: row number).")
@click.option("--shard-size", type=count(), default=256, show_default=True,
              help="Sentences per committed Parquet shard (a shard is also committed every 30 s).")
@click.option("--strategy", type=click.Choice(list(STRATEGY_NAMES)), default="json", show_default=True,
              help="json: one JSON multi-label call; checklist: one call answering true/false for every category "
                   "(P(true) from logprobs); fewshot: + the nearest gold sentences as examples (--gold); per-category: one "
                   "yes/no call per category; embedding: MiniLM similarity prior, no LLM; embedding+X: both combined.")
@click.option("--gold", type=InputPath("gold", folder=True), default=None,
              help="Gold (folder or .jsonl/.csv/.parquet) for few-shot examples and embedding exemplars; an imported "
                   "gold folder gives only its train split (never the frozen test split).")
@click.option("--negatives", type=InputPath("negatives", folder=True), default=None,
              help="Ordinary clinical sentences labelled 'none' (e.g. data/demo/negatives.jsonl), added to the "
                   "exemplars of --strategy embedding/fewshot so ordinary text is not read as AD-related.")
@click.option("--combine-weight", type=FiniteFloat(min=0, max=1), default=None,
              help="embedding+X: the LLM's weight in the mean with the embedding score (default 1/3; choose it on "
                   "gold train with `quality strategies --tune`).")
@click.option("--combine-threshold", type=FiniteFloat(min=0, max=1, min_open=True, max_open=True), default=None,
              help="embedding+X: label a category when the combined score is above this (default 0.5).")
@ray_options()
@engine_options(default_temperature=0.0, default_max_tokens=128)
def label(notes: Path, text_column: str, id_column: str | None, shard_size: int, strategy: str, gold: Path | None,
          negatives: Path | None, combine_weight: float | None, combine_threshold: float | None, **opts) -> None:
    """Data-to-label: split notes into sentences and label each one (silver)."""
    from factory.core.progress import console
    from factory.data.corpus import iter_notes, iter_sentences, validate_notes
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.label import run_label
    from factory.stages.strategies import build_strategy

    taxonomy = load_taxonomy(opts["taxonomy"])
    with console.status(f"checking notes {notes}"):  # one cheap pass over the whole input, before an engine starts
        notes_check = validate_notes(notes, text_column, id_column)
    for decision in notes_check.decisions():
        console.print(f"[yellow]note:[/] {decision}", highlight=False)
    # Streamed: the corpus is read as labelling goes, so memory does not grow with its size.
    sentences = itertools.islice(iter_sentences(iter_notes(notes, text_column, id_column)), opts["limit"])
    first = next(sentences, None)  # bad input fails here, before an engine starts
    if first is None:
        raise FactoryError(f"no sentences found in {notes}")
    sentences = itertools.chain([first], sentences)
    check_scale_out(opts)
    gold_rows = None
    if gold or negatives:
        from factory.data.gold import read_negatives

        gold_rows = gold_train_rows(gold, taxonomy) if gold else None
        if negatives:
            extra = read_negatives(negatives, taxonomy)
            gold_rows = extra if gold_rows is None else gold_rows + extra
    chosen = build_strategy(strategy, taxonomy, gold_rows, combine_weight, combine_threshold)
    with stage_context(opts) as ctx:
        if strategy in ("json", "fewshot"):
            warn_shared_leading_tokens(taxonomy, ctx.model.path)
        stats = run_label(sentences, taxonomy, ctx, shard_size=shard_size, strategy=chosen)
    report_stage(ctx, stats, "silver")


@click.command()
@click.option("--per-category", type=count(), default=20, show_default=True,
              help="Sentences to write for each category and for 'none'.")
@click.option("--per-request", type=count(max=20), default=5, show_default=True,
              help="Sentences asked for in one request.")
@ray_options()
@engine_options(default_temperature=0.8, default_max_tokens=512)
def synthesize(per_category: int, per_request: int, **opts) -> None:
    """Label-to-data: write new sentences for each category from its definition (bronze)."""
    from factory.data.taxonomy import load_taxonomy
    from factory.stages.synthesize import run_synthesize

    taxonomy = load_taxonomy(opts["taxonomy"])
    check_scale_out(opts)
    if opts["limit"]:
        per_category = min(per_category, opts["limit"])
    with stage_context(opts) as ctx:
        stats = run_synthesize(taxonomy, ctx, per_category=per_category, per_request=per_request)
    report_stage(ctx, stats, "bronze")


def gold_train_rows(gold: Path, taxonomy):
    """Exemplar gold for labelling: an imported gold folder gives its train split only (the split `compare`
    freezes, made now if absent), so no test sentence reaches a prompt whose labels are later scored on it."""
    from factory.data.gold import load_gold, read_gold_any
    from factory.data.split import load_or_create_split

    if not Path(gold).is_dir():
        return read_gold_any(gold, taxonomy)
    rows = load_gold(Path(gold), taxonomy)
    split = load_or_create_split(rows, Path(gold), taxonomy)
    return rows.subset(split.train_indices(rows))
