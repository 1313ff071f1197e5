"""Click commands generated from the command specs (factory/core/specs.py, parameters from
factory/core/cli_types.py), and the end-of-stage report."""

from __future__ import annotations

import click

from factory.core.cli_types import FiniteFloat, InputPath, NameOrFolder, OutFolder  # noqa: F401 - older import path
from factory.core.cli_types import build_spec, params_of
from factory.core.progress import console, summary_table
from factory.core.specs import Spec


def command(spec: type[Spec], group: click.Group | None = None, **settings):
    """A click command (or group, with cls=click.Group) from a spec: the function takes the spec; its help is
    the spec's docstring. With `group`, it is that group's subcommand."""

    def decorate(func):
        def callback(**values):
            return func(build_spec(spec, values))

        name = spec.COMMAND.split()[-1]
        cls = settings.pop("cls", click.Command)
        made = cls(name, callback=callback, params=params_of(spec), help=spec.__doc__, **settings)
        made.spec = spec
        if group is not None:
            group.add_command(made)
        return made

    return decorate


def report_stage(ctx, stats, dataset: str) -> None:
    """The end of an LLM stage on the terminal (the runner already recorded it in the manifest)."""
    output = ctx.run.out / dataset
    console.print(summary_table(f"run {ctx.run.run_id}", [stats.summary(str(output))]))
    if stats.short:
        shortfall = ", ".join(f"{cid} {kept}" for cid, kept in stats.short.items())
        console.print(f"[yellow]warning: {len(stats.short)} categor{'y' if len(stats.short) == 1 else 'ies'} still short of "
                      f"the target after every planned request (duplicate, too short or failed outputs): {shortfall}. "
                      "A rerun retries failed requests only; for more, use a new --out with a higher --per-category, "
                      "or a stronger model.[/]",
                      highlight=False)
    rejected = ctx.run.manifest["stages"].get(dataset, {}).get("sentence_check_rejected") or {}
    if rejected:
        counts = ", ".join(f"{cid} {sum(reasons.values())}" for cid, reasons in rejected.items())
        console.print(f"sentence check: rows that were not clinical sentences went to failed/ ({counts})", highlight=False)
    if stats.failures:
        console.print(f"[yellow]{stats.failed} output(s) failed and were written to {ctx.run.out / 'failed'}:[/]")
        for what, why in stats.failures[:10]:
            console.print(f"  - {what!r}: {why}")
    click.echo(str(output))
