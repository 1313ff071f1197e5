"""`check`, `consistency`, `dedup`, `quality` (+ `quality strategies`, `quality checker`, `quality
simulate-review`): judgements go to side tables next to the datasets they judge; silver and bronze are never
rewritten. The work is factory/api.py's; these print."""

from __future__ import annotations

import json

import click

from factory import api
from factory.cli.options import command, report_stage
from factory.core.progress import console
from factory.core.specs import (CheckerSpec, CheckSpec, ConsistencySpec, DedupSpec, QualitySpec, SimulateReviewSpec,
                                StrategiesSpec)


def _report_check(ctx, stats, dataset: str) -> None:
    report_stage(ctx, stats, dataset)
    judged = dataset.removesuffix("_check")
    counts = api.verdict_counts(ctx.run.out, judged)
    if counts:
        console.print(f"{judged}: {counts[0]} judged, {counts[1]} rejected ({counts[1] / counts[0]:.0%}); "
                      f"rows stay in {ctx.run.out / judged}", highlight=False)


@command(CheckSpec)
def check(spec: CheckSpec) -> None:
    api.check(spec, _report_check)


@command(ConsistencySpec)
def consistency(spec: ConsistencySpec) -> None:
    api.consistency(spec, report_stage)
    agreement = api.agreement_summary(spec.run)
    if agreement:
        console.print(f"mean agreement {agreement[0]:.2f}; silver equals the majority on {agreement[1]}/{agreement[2]} "
                      "rows", highlight=False)


@command(DedupSpec)
def dedup(spec: DedupSpec) -> None:
    summary = api.dedup(spec)
    reasons = ", ".join(f"{k}: {v}" for k, v in summary["by_reason"].items()) or "none"
    console.print(f"bronze: {summary['rows']} sentences, {summary['flagged']} flagged as duplicates "
                  f"({summary['rate']:.1%}; {reasons}); nothing deleted", highlight=False)
    click.echo(str(spec.run / "bronze_dedup"))


@command(QualitySpec, cls=click.Group, invoke_without_command=True)
def quality(spec: QualitySpec) -> None:
    if click.get_current_context().invoked_subcommand is None:
        for path in api.quality_report(spec):
            click.echo(str(path))


@command(StrategiesSpec, group=quality)
def strategies(spec: StrategiesSpec) -> None:
    markdown, out_dir = api.strategies(spec)
    click.echo(markdown)
    click.echo(str(out_dir))


@command(CheckerSpec, group=quality)
def checker(spec: CheckerSpec) -> None:
    click.echo(json.dumps(api.checker(spec), indent=1))


@command(SimulateReviewSpec, group=quality)
def simulate_review(spec: SimulateReviewSpec) -> None:
    from factory.review.commands import run_simulation

    result, paths = run_simulation(spec, lambda order, seed: console.print(f"simulating {order} order, seed {seed}",
                                                                           highlight=False))
    for line in result.lines():
        click.echo(line)
    for path in paths:
        click.echo(str(path))
