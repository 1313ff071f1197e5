"""Housekeeping commands: `schemas`, `prepare-model`, `models`, `runs`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from factory.cli.options import command
from factory.core.errors import FactoryError
from factory.core.specs import ModelsSpec, PrepareModelSpec, RunsSpec, SchemasSpec
from factory.core.progress import console

@command(SchemasSpec)
def schemas(spec: SchemasSpec) -> None:
    from factory.data.schemas_io import write_schemas
    from factory.data.taxonomy import load_taxonomy

    for path in write_schemas(load_taxonomy(spec.taxonomy), spec.out, spec.per_request):
        click.echo(str(path))


@command(PrepareModelSpec)
def prepare_model(spec: PrepareModelSpec) -> None:
    from factory.engines.catalogue import load_catalogue, prepare
    from factory.engines.model_ref import EMBEDDED_NAME, resolve_model

    name, model = spec.name, spec.model
    if model is not None and name is not None:
        raise FactoryError("give a catalogue NAME or --model PATH, not both")
    if name is not None and not name.strip():  # an empty shell variable must not mean "the default model"
        raise FactoryError("the model NAME is empty; give a name from `bin/generate models`, or none for the default")
    if model is not None:
        ref = resolve_model(model)
        click.echo(f"{ref.path}  sha256:{ref.hash[:16]}")
        return
    entry = load_catalogue().get(name or EMBEDDED_NAME)
    folder = prepare(entry, find_links=spec.wheels, say=lambda line: console.print(f"[dim]{entry.name}: {line}[/]"))
    if entry.kind == "llm":
        ref = resolve_model(entry.name)
        click.echo(f"{ref.path}  sha256:{ref.hash[:16]}  source sha256:{entry.sha256}")
    else:
        click.echo(f"{folder}  source sha256:{entry.sha256}" if entry.sha256 else f"{entry.name}: installed package {entry.package}")


@command(ModelsSpec)
def models(spec: ModelsSpec) -> None:
    from factory.engines.catalogue import load_catalogue

    catalogue = load_catalogue()
    default = catalogue.default_name()
    for entry in catalogue.models.values():
        size = f"{entry.size / 1e6:,.0f} MB" if entry.size else "installed package"
        state = "prepared" if entry.prepared() else "not prepared"
        click.echo(f"{entry.name}{' (default)' if entry.name == default else ''}  [{entry.kind}]  {state}  {size}"
                   + (f"  sha256 {entry.sha256}" if entry.sha256 else f"  {entry.package}"))
        click.echo(f"    {entry.title}: {entry.purpose}")
        click.echo(f"    licence: {entry.licence}")
        if entry.source_check:
            click.echo(f"    hash: {entry.source_check}")
        if not entry.prepared():
            click.echo(f"    prepare: bin/generate prepare-model {entry.name}")


@command(RunsSpec)
def runs(spec: RunsSpec) -> None:
    root, check, repair = spec.root, spec.check, spec.repair
    if repair and check is None:
        raise FactoryError("--repair needs --check RUN (the run folder to repair)")
    if check is not None:
        _check(_run_folder(check, root), repair)
        return
    from rich.table import Table

    from factory.data.run_folder import list_runs

    entries = list_runs(root)
    table = Table(title=f"runs in {root or 'data/runs'}")
    for column in ("run", "stage", "state", "rows", "failed", "model", "finished"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry["run"], entry["stage"], entry["state"], str(entry["rows"]), str(entry["failed"]),
                      entry["model"], entry["finished"])
    console.print(table)
    for entry in entries:
        if entry.get("note"):
            console.print(f"{entry['run']}: {entry['note']}", markup=False, highlight=False)


def _run_folder(run: Path, root: Path | None) -> Path:
    """--check takes a path, or the name of a run under --root (data/runs)."""
    from factory.core.paths import RUNS_DIR

    if not run.exists() and len(run.parts) == 1 and ((root or RUNS_DIR) / run).exists():
        run = (root or RUNS_DIR) / run
    if not run.is_dir():
        raise FactoryError(f"run folder not found: {run}")
    return run


def _check(run: Path, repair: bool) -> None:
    from factory.data.run_folder import FOREIGN, check_run, looks_like_run, producer_of, repair_run

    if not looks_like_run(run):
        raise FactoryError(f"{run} is not a run folder of this factory (no run manifest and no dataset shards)")
    checked, problems = check_run(run)
    if not problems:
        click.echo(f"{run}: {checked} file(s) read in full, none damaged")
        return
    if not repair:
        for rel, reason in problems:
            click.echo(f"{'foreign' if reason.startswith(FOREIGN) else 'damaged'}: {run / rel}: {reason}")
        click.echo(f"{len(problems)} file(s) in {run} cannot be read or are not the factory's ({checked} read); "
                   f"`bin/generate runs --check {run} --repair` moves them into {run}/.damaged/ (nothing is deleted)")
        sys.exit(1)
    dest, moved = repair_run(run)
    if dest is None:
        click.echo(f"{run}: no damaged files any more; nothing moved")
        return
    for rel, reason in moved:
        click.echo(f"moved aside: {run / rel} -> {dest / rel} ({reason})")
    folders = sorted({rel.split("/", 1)[0] for rel, why in moved if "/" in rel and not why.startswith(FOREIGN)})
    commands = sorted({c for f in folders if (c := producer_of(f))})
    click.echo(f"{len(moved)} file(s) moved into {dest}.")
    if commands:
        click.echo(f"Rerun {', '.join(f'`bin/generate {c}`' for c in commands)} on {run} (same options) to regenerate "
                   "exactly what they held; rows in the other shards are kept and not asked again.")
