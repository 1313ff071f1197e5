"""Housekeeping commands: `schemas`, `prepare-model`, `runs`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from factory.core.errors import FactoryError
from factory.core.paths import SCHEMAS_DIR
from factory.core.progress import console

@click.command()
@click.option("--taxonomy", type=click.Path(path_type=Path), default=None, help="Taxonomy JSON (default: schemas/taxonomy.json).")
@click.option("--out", type=click.Path(path_type=Path), default=SCHEMAS_DIR, show_default=True)
@click.option("--per-request", type=click.IntRange(min=1, max=20), default=5, show_default=True)
def schemas(taxonomy: Path | None, out: Path, per_request: int) -> None:
    """Write the JSON schemas derived from the taxonomy (label.schema.json, synthesize.schema.json)."""
    from factory.data.schemas_io import write_schemas
    from factory.data.taxonomy import load_taxonomy

    for path in write_schemas(load_taxonomy(taxonomy), out, per_request):
        click.echo(str(path))


@click.command("prepare-model")
@click.option("--model", type=click.Path(path_type=Path), default=None, help="Check a local model folder instead.")
def prepare_model(model: Path | None) -> None:
    """Prepare the embedded model once (GGUF -> Hugging Face folder under data/models/) and print its path."""
    from factory.engines.model_ref import resolve_model

    ref = resolve_model(model)
    click.echo(f"{ref.path}  sha256:{ref.hash[:16]}")


@click.command()
@click.option("--root", type=click.Path(path_type=Path), default=None, help="Folder of run folders (default: data/runs).")
@click.option("--check", "check", type=click.Path(path_type=Path), default=None, metavar="RUN",
              help="Read every Parquet shard and JSON file of one run folder in full and list the unreadable ones "
                   "(exit code 1 when there are any).")
@click.option("--repair", is_flag=True, default=False,
              help="With --check: move the unreadable files into RUN/.damaged/<timestamp>/ (nothing is deleted), "
                   "so a resume with the same command regenerates exactly what they held.")
def runs(root: Path | None, check: Path | None, repair: bool) -> None:
    """List runs with their stages, row counts and state; --check RUN finds damaged files, --repair moves them aside."""
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
    from factory.data.run_folder import check_run, looks_like_run, producer_of, repair_run

    if not looks_like_run(run):
        raise FactoryError(f"{run} is not a run folder of this factory (no run manifest and no dataset shards)")
    checked, problems = check_run(run)
    if not problems:
        click.echo(f"{run}: {checked} file(s) read in full, none damaged")
        return
    if not repair:
        for rel, reason in problems:
            click.echo(f"damaged: {run / rel}: {reason}")
        click.echo(f"{len(problems)} of {checked} file(s) in {run} cannot be read; "
                   f"`bin/generate runs --check {run} --repair` moves them into {run}/.damaged/ (nothing is deleted)")
        sys.exit(1)
    dest, moved = repair_run(run)
    if dest is None:
        click.echo(f"{run}: no damaged files any more; nothing moved")
        return
    for rel, reason in moved:
        click.echo(f"moved aside: {run / rel} -> {dest / rel} ({reason})")
    folders = sorted({rel.split("/", 1)[0] for rel, _ in moved if "/" in rel})
    commands = sorted({c for f in folders if (c := producer_of(f))})
    click.echo(f"{len(moved)} file(s) moved into {dest}.")
    if commands:
        click.echo(f"Rerun {', '.join(f'`bin/generate {c}`' for c in commands)} on {run} (same options) to regenerate "
                   "exactly what they held; rows in the other shards are kept and not asked again.")
