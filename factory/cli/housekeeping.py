"""Housekeeping commands: `schemas`, `prepare-model`, `models`, `runs` (the work: factory/api.py, the catalogue)."""

from __future__ import annotations

import sys

import click

from factory import api
from factory.cli.options import command
from factory.core.progress import console
from factory.core.specs import ModelsSpec, PrepareModelSpec, RunsSpec, SchemasSpec


@command(SchemasSpec)
def schemas(spec: SchemasSpec) -> None:
    from factory.data.schemas_io import write_schemas
    from factory.data.taxonomy import load_taxonomy

    for path in write_schemas(load_taxonomy(spec.taxonomy), spec.out, spec.per_request):
        click.echo(str(path))


@command(PrepareModelSpec)
def prepare_model(spec: PrepareModelSpec) -> None:
    click.echo(api.prepare_model(spec))


@command(ModelsSpec)
def models(spec: ModelsSpec) -> None:
    from factory.engines.catalogue import load_catalogue

    catalogue = load_catalogue()
    for entry in catalogue.models.values():
        size = f"{entry.size / 1e6:,.0f} MB" if entry.size else "installed package"
        click.echo(f"{entry.name}{' (default)' if entry.name == catalogue.default_name() else ''}  [{entry.kind}]  "
                   f"{'prepared' if entry.prepared() else 'not prepared'}  {size}"
                   + (f"  sha256 {entry.sha256}" if entry.sha256 else f"  {entry.package}"))
        click.echo(f"    {entry.title}: {entry.purpose}")
        click.echo(f"    licence: {entry.licence}")
        if entry.source_check:
            click.echo(f"    hash: {entry.source_check}")
        if not entry.prepared():
            click.echo(f"    prepare: bin/generate prepare-model {entry.name}")


@command(RunsSpec)
def runs(spec: RunsSpec) -> None:
    if spec.check is not None or spec.repair:
        return _say_check(api.check_run(spec))
    from rich.table import Table

    entries = api.list_runs(spec)
    table = Table(title=f"runs in {spec.root or 'data/runs'}")
    for column in ("run", "stage", "state", "rows", "failed", "model", "finished"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry["run"], entry["stage"], entry["state"], str(entry["rows"]), str(entry["failed"]),
                      entry["model"], entry["finished"])
    console.print(table)
    for entry in entries:
        if entry.get("note"):
            console.print(f"{entry['run']}: {entry['note']}", markup=False, highlight=False)


def _say_check(found: api.RunCheck) -> None:
    run = found.run
    if found.problems:
        for rel, reason, kind in found.problems:
            click.echo(f"{kind}: {run / rel}: {reason}")
        click.echo(f"{len(found.problems)} file(s) in {run} cannot be read or are not the factory's ({found.checked} "
                   f"read); `bin/generate runs --check {run} --repair` moves them into {run}/.damaged/ (nothing is deleted)")
        sys.exit(1)
    if found.moved_to is None:
        click.echo(f"{run}: no damaged files any more; nothing moved" if found.repaired else
                   f"{run}: {found.checked} file(s) read in full, none damaged")
        return
    for rel, reason in found.moved:
        click.echo(f"moved aside: {run / rel} -> {found.moved_to / rel} ({reason})")
    click.echo(f"{len(found.moved)} file(s) moved into {found.moved_to}.")
    if found.rerun:
        click.echo(f"Rerun {', '.join(f'`bin/generate {c}`' for c in found.rerun)} on {run} (same options) to regenerate "
                   "exactly what they held; rows in the other shards are kept and not asked again.")
