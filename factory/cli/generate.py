"""`label` and `synthesize`: the two directions of data generation (silver and bronze)."""

from __future__ import annotations

import itertools
from pathlib import Path

import click

from factory.cli.options import (check_scale_out, engine_config, engine_options, finish_stage, ray_options,
                                 stage_context, warn_shared_leading_tokens)
from factory.core.errors import FactoryError

@click.command()
@click.option("--notes", type=click.Path(path_type=Path), required=True,
              help="A folder of .txt notes, or a .txt / .csv / .parquet / .jsonl file.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note text (tables).")
@click.option("--id-column", default=None, help="Column holding the note id (tables; default: row number).")
@click.option("--shard-size", type=click.IntRange(min=1), default=256, show_default=True,
              help="Sentences per committed Parquet shard.")
@click.option("--strategy", type=click.Choice(["json", "fewshot", "per-category", "embedding", "embedding+per-category",
                                               "embedding+json"]), default="json", show_default=True,
              help="json: one JSON multi-label call; fewshot: + rotated gold examples (--gold); per-category: one "
                   "yes/no call per category; embedding: MiniLM similarity prior, no LLM; embedding+X: both combined.")
@click.option("--gold", type=click.Path(path_type=Path), default=None,
              help="Gold (folder or .jsonl/.csv/.parquet) for few-shot examples and embedding exemplars.")
@ray_options("Label as a Ray Data pipeline over sharded Parquet, one engine per Ray actor (same rows, same resume).")
@engine_options(default_temperature=0.0, default_max_tokens=128)
def label(notes: Path, text_column: str, id_column: str | None, shard_size: int, strategy: str, gold: Path | None,
          use_ray: bool, workers: int, ray_address: str | None, **opts) -> None:
    """Data-to-label: split notes into sentences and label each one (silver)."""
    from factory.data.corpus import iter_notes, iter_sentences
    from factory.stages.label import run_label
    from factory.data.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(opts["taxonomy"])
    # Streamed: the corpus is read as labelling goes, so memory does not grow with its size.
    sentences = itertools.islice(iter_sentences(iter_notes(notes, text_column, id_column)), opts["limit"])
    first = next(sentences, None)  # bad input fails here, before an engine starts
    if first is None:
        raise FactoryError(f"no sentences found in {notes}")
    sentences = itertools.chain([first], sentences)
    check_scale_out({**opts, "use_ray": use_ray})
    if use_ray and strategy != "json":
        raise FactoryError("--ray runs the json strategy only; drop --strategy or --ray")
    chosen = None
    if strategy != "json":
        from factory.data.gold import read_gold_any
        from factory.stages.strategies import build_strategy

        chosen = build_strategy(strategy, taxonomy, read_gold_any(gold, taxonomy) if gold else None)
    ctx = stage_context(opts)
    if strategy in ("json", "fewshot"):
        warn_shared_leading_tokens(taxonomy, ctx.model.path)
    ctx.run.mark_running("silver")
    try:
        if use_ray:
            from factory.engines.ray_pool import stop_ray
            from factory.scale.ray_label import run_label_ray

            try:
                config = engine_config(opts, ctx.model.path)
                stats = run_label_ray(sentences, taxonomy, ctx, opts["engine"], config, workers, shard_size, ray_address)
            finally:
                stop_ray()
        elif chosen is None:
            stats = run_label(sentences, taxonomy, ctx, shard_size=shard_size)
        else:
            from factory.stages.strategies import run_label_with_strategy

            stats = run_label_with_strategy(list(sentences), taxonomy, ctx, chosen, shard_size=shard_size)
    finally:
        ctx.close()
    finish_stage(ctx, stats, "silver")


@click.command()
@click.option("--per-category", type=click.IntRange(min=1), default=20, show_default=True,
              help="Sentences to write for each category and for 'none'.")
@click.option("--per-request", type=click.IntRange(min=1, max=20), default=5, show_default=True,
              help="Sentences asked for in one request.")
@ray_options("Write bronze on a Ray cluster: each wave of requests is spread over --workers engine actors "
             "(same rows, same resume).")
@engine_options(default_temperature=0.8, default_max_tokens=512)
def synthesize(per_category: int, per_request: int, **opts) -> None:
    """Label-to-data: write new sentences for each category from its definition (bronze)."""
    from factory.stages.synthesize import run_synthesize
    from factory.data.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(opts["taxonomy"])
    check_scale_out(opts)
    if opts["limit"]:
        per_category = min(per_category, opts["limit"])
    ctx = stage_context(opts)
    ctx.run.mark_running("bronze")
    try:
        stats = run_synthesize(taxonomy, ctx, per_category=per_category, per_request=per_request)
    finally:
        ctx.close()
    finish_stage(ctx, stats, "bronze")
