"""Housekeeping commands: `schemas`, `prepare-model`, `runs`."""

from __future__ import annotations

from pathlib import Path

import click

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
def runs(root: Path | None) -> None:
    """List runs with their stages, row counts and state."""
    from rich.table import Table

    from factory.data.run_folder import list_runs

    table = Table(title=f"runs in {root or 'data/runs'}")
    for column in ("run", "stage", "state", "rows", "failed", "model", "finished"):
        table.add_column(column)
    for entry in list_runs(root):
        table.add_row(entry["run"], entry["stage"], entry["state"], str(entry["rows"]), str(entry["failed"]),
                      entry["model"], entry["finished"])
    console.print(table)
