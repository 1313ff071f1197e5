"""Click commands of the quality controls: `check`, `consistency`, `dedup`, `quality` (+ `quality strategies`,
`quality checker`, `quality simulate-review`).

Registered in the main `bin/generate` group (factory/cli.py), which turns FactoryError into one
`error:` line and exit code 2. Every command writes side tables next to the datasets it judges and never
rewrites silver or bronze.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from factory.cli.options import (ExistingDir, FiniteFloat, InputPath, OutFolder, RegularFile, SeedList, check_scale_out,
                                 count, engine_options, ray_options, report_stage, stage_context)
from factory.core.errors import FactoryError
from factory.core.progress import console

PathType = click.Path(path_type=Path)


def run_engine_options(default_temperature: float, default_max_tokens: int):
    """The shared LLM options, with `--run DIR` (an existing run folder) in place of `--out`."""

    def decorate(func):
        func = engine_options(default_temperature, default_max_tokens)(ray_options()(func))
        func.__click_params__ = [p for p in func.__click_params__ if p.name != "out"]
        return click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True, help="Run folder to judge.")(func)

    return decorate


def _existing_run(run_dir: Path) -> Path:
    if not (run_dir / "manifest.json").is_file():
        raise FactoryError(f"{run_dir} is not a run folder (no manifest.json)")
    return run_dir


@click.command(name="check")
@click.option("--dataset", type=click.Choice(["silver", "bronze", "both"]), default="both", show_default=True)
@run_engine_options(default_temperature=0.0, default_max_tokens=96)
def check(dataset: str, run_dir: Path, **opts) -> None:
    """Verify: an LLM judge accepts or rejects each silver label set / bronze sentence (side tables)."""
    from factory.stages.verify import CHECKED_DATASETS, run_check
    from factory.data.store import shard_paths
    from factory.data.taxonomy import load_taxonomy

    run_dir = _existing_run(run_dir)
    taxonomy = load_taxonomy(opts["taxonomy"])
    datasets = [d for d in CHECKED_DATASETS if dataset in (d, "both") and (dataset != "both" or shard_paths(run_dir / d))]
    if not datasets:
        raise FactoryError(f"no silver or bronze shards in {run_dir}")
    check_scale_out(opts)
    with stage_context({**opts, "out": run_dir}) as ctx:  # one engine judges both datasets
        for name in datasets:
            report_stage(ctx, run_check(run_dir, name, taxonomy, ctx, limit=opts["limit"]), f"{name}_check")
            _print_verdicts(run_dir, name)


def _print_verdicts(run_dir: Path, dataset: str) -> None:
    import polars as pl

    from factory.stages.verify import current_verdicts

    verdicts = current_verdicts(run_dir, dataset)
    if verdicts is None or not verdicts.height:
        return
    rejected = verdicts.filter(pl.col("verdict") == "reject").height
    console.print(f"{dataset}: {verdicts.height} judged, {rejected} rejected "
                  f"({rejected / verdicts.height:.0%}); rows stay in {run_dir / dataset}", highlight=False)


@click.command(name="consistency")
@click.option("--samples", "-k", type=count(min=2), default=5, show_default=True,
              help="Sampled labelings per silver sentence.")
@click.option("--logprobs", is_flag=True, help="Also record token log-probability confidence (vLLM).")
@run_engine_options(default_temperature=0.7, default_max_tokens=128)
def consistency(samples: int, logprobs: bool, run_dir: Path, **opts) -> None:
    """Silver confidence: k sampled labelings per sentence, majority label set and agreement (side table)."""
    from dataclasses import replace

    import polars as pl

    from factory.stages.consistency import current_agreement, run_consistency
    from factory.data.taxonomy import load_taxonomy

    run_dir = _existing_run(run_dir)
    taxonomy = load_taxonomy(opts["taxonomy"])
    check_scale_out(opts)
    with stage_context({**opts, "out": run_dir}) as ctx:
        if logprobs:
            ctx.sampling = replace(ctx.sampling, logprobs=1)
        stats = run_consistency(run_dir, taxonomy, ctx, samples=samples, limit=opts["limit"])
    report_stage(ctx, stats, "silver_consistency")
    table = current_agreement(run_dir)
    if table is not None and table.height:
        console.print(f"mean agreement {table['agreement'].mean():.2f}; silver equals the majority on "
                      f"{table.filter(pl.col('silver_agrees')).height}/{table.height} rows", highlight=False)


@click.command(name="dedup")
@click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True, help="Run folder whose bronze to check.")
@click.option("--gold", type=InputPath("gold", folder=True), default=None,
              help="Gold folder or .jsonl/.csv/.parquet file to compare against.")
@click.option("--threshold", type=FiniteFloat(min=0, max=1, min_open=True), default=None,
              help="Cosine similarity (bundled MiniLM) at which a sentence is a near-duplicate [default: 0.92].")
@click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None, help="Taxonomy JSON (default: schemas/taxonomy.json).")
def dedup(run_dir: Path, gold: Path | None, threshold: float | None, taxonomy: Path | None) -> None:
    """Flag exact and near-duplicate bronze sentences (within bronze and against gold/silver); deletes nothing."""
    from factory.quality.dedup import DEFAULT_THRESHOLD, Reference, run_dedup
    from factory.data.gold import read_gold_any
    from factory.data.store import read_dataset, shard_paths
    from factory.data.taxonomy import load_taxonomy
    from factory.data.rows import Rows

    run_dir = _existing_run(run_dir)
    tax = load_taxonomy(taxonomy)
    parts = []
    if shard_paths(run_dir / "silver"):
        silver = read_dataset(run_dir / "silver")
        parts.append(Rows(silver["row_id"].to_list(), ["silver"] * silver.height, silver["text"].to_list(),
                          silver["labels"].to_list()))
    if gold is not None:
        parts.append(read_gold_any(gold, tax))
    summary = run_dedup(run_dir, Reference.from_rows(*parts), threshold or DEFAULT_THRESHOLD)
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["by_reason"].items()) or "none"
    console.print(f"bronze: {summary['rows']} sentences, {summary['flagged']} flagged as duplicates "
                  f"({summary['rate']:.1%}; {reasons}); nothing deleted", highlight=False)
    click.echo(str(run_dir / "bronze_dedup"))


@click.group(name="quality", invoke_without_command=True)
@click.option("--run", "run_dir", type=ExistingDir("run folder"), default=None, help="Run folder to report on.")
@click.option("--gold", type=InputPath("gold", folder=True), default=None, help="Gold folder or .jsonl/.csv/.parquet file.")
@click.option("--out", type=OutFolder(), default=None,
              help="Report folder: new, empty, or an earlier `quality` report, which is replaced whole "
                   "(default: <run>/quality).")
@click.option("--noise-threshold", type=FiniteFloat(min=0.5, max=1, min_open=True), default=0.9, show_default=True,
              help="Gold-trained classifier confidence at which it overrules a silver label (review flags).")
@click.option("--review-limit", type=count(), default=50, show_default=True,
              help="Rows in the review sheet (most confident disagreements first).")
@click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None, help="Taxonomy JSON (default: schemas/taxonomy.json).")
@click.pass_context
def quality(click_ctx, run_dir, gold, out, noise_threshold, review_limit, taxonomy) -> None:
    """Quality report of a run (Markdown + PNG); `quality strategies` measures labelling strategies; `quality
    simulate-review` measures the review queue's order."""
    if click_ctx.invoked_subcommand is not None:
        return
    if run_dir is None:
        raise FactoryError("quality needs --run DIR (or the `strategies` subcommand)")
    from factory.data.output_folder import claim_output_folder
    from factory.quality.report import QUALITY_WRITER, build_report
    from factory.data.taxonomy import load_taxonomy

    run_dir = _existing_run(run_dir)
    tax = load_taxonomy(taxonomy)
    with claim_output_folder(out or run_dir / "quality", QUALITY_WRITER) as folder:  # refused before any work
        paths = build_report(run_dir, tax, gold, folder.build, noise_threshold, review_limit, console)
        paths += _llm_vs_review(run_dir, tax, gold, folder.build)
    for path in paths:
        click.echo(str(folder.final(path)))


def _llm_vs_review(run_dir: Path, taxonomy, gold: Path | None, out: Path) -> list[Path]:
    """The LLM's silver labels against clinician review (and gold): precision, kappa, calibration."""
    from factory.data.gold import read_gold_any
    from factory.quality.llm_vs_review import build, console_lines

    report, paths = build(run_dir, taxonomy, read_gold_any(gold, taxonomy) if gold else None, out)
    if report is None:
        console.print(f"no clinician reviews of silver in {run_dir} (`bin/generate review`); skipped the LLM's "
                      "precision, kappa and calibration against reviewers", highlight=False)
        return []
    for line in console_lines(report):
        console.print(line, highlight=False)
    return paths


@quality.command(name="strategies")
@click.option("--gold", type=InputPath("gold", folder=True), required=True,
              help="Gold folder or .jsonl/.csv/.parquet file to label and score.")
@click.option("--strategies", "names", default="json,fewshot,per-category,embedding,embedding+per-category",
              show_default=True, help="Comma-separated; also checklist, embedding+json, embedding+checklist.")
@click.option("--exemplars", type=InputPath("exemplars", folder=True), default=None,
              help="Gold whose sentences are the few-shot and embedding exemplars (e.g. gold train when --gold is the "
                   "test split); default: --gold itself, leave-one-out.")
@click.option("--tune", is_flag=True, default=False,
              help="Choose each embedding+X combination's weight and threshold on --exemplars (labels it with the "
                   "LLM too), then score --gold with them.")
@engine_options(default_temperature=0.0, default_max_tokens=128)
def strategies(gold: Path, names: str, exemplars: Path | None, tune: bool, **opts) -> None:
    """Label the gold sentences with each labelling strategy and score micro/macro-F1 against gold."""
    from factory.data.gold import read_gold_any
    from factory.quality.strategy_eval import evaluate_strategies, strategies_markdown, write_strategy_results
    from factory.stages.strategies import LLM_STRATEGIES, STRATEGIES
    from factory.data.taxonomy import load_taxonomy

    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in STRATEGIES]
    if unknown or not chosen:
        raise FactoryError(f"unknown strategy {', '.join(unknown) or '(none)'}; choose from {', '.join(STRATEGIES)}")
    taxonomy = load_taxonomy(opts["taxonomy"])
    rows = read_gold_any(gold, taxonomy)
    needs_llm = any(part in LLM_STRATEGIES for n in chosen for part in n.split("+"))
    ctx = stage_context(opts) if needs_llm else None
    try:
        if ctx is not None and needs_llm:
            ctx.start_engine()
        results, predictions = evaluate_strategies(rows, chosen, taxonomy, ctx, opts["limit"],
                                                   read_gold_any(exemplars, taxonomy) if exemplars else None, tune)
    finally:
        if ctx is not None:
            ctx.close()
    model_name = ctx.model.path.name if ctx else "(no LLM)"
    markdown = strategies_markdown(results, model_name, str(gold), len(predictions["text"]))
    out_dir = (ctx.run.out if ctx else (opts["out"] or Path("data/runs/strategies"))) / "strategies"
    meta = {"gold": str(gold), "sentences": len(predictions["text"]), "model": model_name,
            "model_hash": ctx.model.hash if ctx else None, "sampling": ctx.sampling.to_json() if ctx else None}
    write_strategy_results(out_dir, results, predictions, markdown, meta)
    click.echo(markdown)
    click.echo(str(out_dir))


@quality.command(name="checker")
@click.option("--gold", type=InputPath("gold", folder=True), required=True, help="Gold folder or .jsonl/.csv/.parquet file.")
@engine_options(default_temperature=0.0, default_max_tokens=96)
def checker(gold: Path, **opts) -> None:
    """How far the verifier agrees with gold: each sentence judged with its gold labels and with a wrong one."""
    from factory.data.gold import read_gold_any
    from factory.data.taxonomy import load_taxonomy
    from factory.quality.strategy_eval import evaluate_checker

    taxonomy = load_taxonomy(opts["taxonomy"])
    rows = read_gold_any(gold, taxonomy)
    with stage_context(opts) as ctx:
        result = evaluate_checker(rows, taxonomy, ctx, opts["limit"], opts["seed"])
    click.echo(json.dumps({"gold": str(gold), "model": ctx.model.name or str(ctx.model.path), **result}, indent=1))


@quality.command(name="simulate-review")
@click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True,
              help="Run folder whose silver queue to simulate.")
@click.option("--gold", "gold_dir", type=ExistingDir("gold folder"), default=None,
              help="Imported gold folder (default: RUN/gold): its train split answers for the reviewer, its frozen "
                   "test split scores.")
@click.option("--batch", type=count(), default=10, show_default=True,
              help="Rows reviewed between refits of the classifier (and re-rankings of the queue).")
@click.option("--budget", type=count(), default=None,
              help="Stop after this many reviewed rows (default: the whole pool).")
@click.option("--seeds", type=SeedList(), default="0,1,2", show_default=True,
              help="Comma-separated seeds: random order's shuffle, tie-breaks, the classifier.")
@click.option("--out", type=OutFolder(), default=None,
              help="Report folder: new, empty, or an earlier `quality simulate-review` report, which is replaced "
                   "whole (default: <run>/review_simulation).")
@click.option("--taxonomy", type=RegularFile("taxonomy file"), default=None,
              help="Taxonomy JSON (default: schemas/taxonomy.json).")
def simulate_review(run_dir: Path, gold_dir: Path | None, batch: int, budget: int | None, seeds: str,
                    out: Path | None, taxonomy: Path | None) -> None:
    """Is informative order worth a clinician's hour? A reviewer who answers with gold labels reviews silver in
    batches, informative vs random order; test F1 against rows reviewed (Markdown, PNG, CSV)."""
    from factory.data.output_folder import claim_output_folder
    from factory.data.taxonomy import load_taxonomy
    from factory.review.simulation import SIMULATION_WRITER, build_pool, simulate, write_report
    from factory.trainer.compare import parse_seeds

    run_dir = _existing_run(run_dir)
    tax = load_taxonomy(taxonomy)
    seed_list = parse_seeds(seeds)
    gold_dir = gold_dir or run_dir / "gold"
    with claim_output_folder(out or run_dir / "review_simulation", SIMULATION_WRITER) as folder:  # refused before work
        pool = build_pool(run_dir, gold_dir, tax)
        result = simulate(run_dir, gold_dir, pool, tax, batch, budget, seed_list,
                          lambda order, seed: console.print(f"simulating {order} order, seed {seed}", highlight=False))
        paths = write_report(result, folder.build)
    for line in result.lines():
        click.echo(line)
    for path in paths:
        click.echo(str(folder.final(path)))
