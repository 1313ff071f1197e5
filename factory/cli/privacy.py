"""`bin/generate check-phi` and `bin/generate export`: options and output; the gate itself is
factory/quality/privacy.py."""

from __future__ import annotations

from pathlib import Path

import click

from factory.cli.options import ExistingDir, InputPath, OutFolder
from factory.quality.privacy import DEFAULT_LICENSE


@click.command("check-phi")
@click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True,
              help="Run folder whose bronze/ is scanned.")
@click.option("--notes", type=InputPath("notes", folder=True), default=None,
              help="Notes corpus (as for `label --notes`): bronze sharing a long word n-gram with it is quarantined.")
@click.option("--text-column", default="text", show_default=True, help="Column holding the note text (note tables).")
@click.option("--gold", type=InputPath("gold", folder=True), default=None,
              help="Gold set (a folder of Parquet shards, or .parquet / .jsonl with a `text` field), checked like --notes.")
@click.option("--ngram", type=click.IntRange(min=4, max=50), default=8, show_default=True,
              help="Words in a shared run that counts as verbatim overlap.")
@click.option("--no-ner", is_flag=True, help="Rules only: skip the spaCy name/place model (faster, misses untitled names).")
def check_phi(run_dir: Path, notes: Path | None, text_column: str, gold: Path | None, ngram: int, no_ner: bool) -> None:
    """Scan bronze for PHI; mark each row pass or quarantined in <run>/bronze_phi/ (bronze is not modified)."""
    from factory.quality.privacy import scan_bronze

    info, shard = scan_bronze(run_dir, notes, text_column, gold, ngram, no_ner)
    click.echo(f"rows scanned: {info['rows']}")
    click.echo(f"passed: {info['passed']}")
    click.echo(f"quarantined: {info['quarantined']}")
    for kind, count in sorted(info["quarantined_by_type"].items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {kind}: {count}")
    click.echo(str(shard))


@click.command("export")
@click.option("--run", "run_dir", type=ExistingDir("run folder"), required=True, help="Run folder to export bronze from.")
@click.option("--out", type=OutFolder(), required=True,
              help="New bundle folder (must not exist, or be empty; see --replace).")
@click.option("--replace", is_flag=True, help="Replace the bundle an earlier export wrote at --out (whole, atomically).")
@click.option("--license", "license_text", default=DEFAULT_LICENSE, show_default=True,
              help="Licence stated in DATACARD.md.")
def export(run_dir: Path, out: Path, replace: bool, license_text: str) -> None:
    """Build a shareable bundle: bronze rows that passed check-phi, DATACARD.md, manifest.json (bronze only)."""
    from factory.quality.privacy import export_bundle

    exported, scanned = export_bundle(run_dir, out, license_text, replace)
    click.echo(f"exported {exported} of {scanned} bronze rows ({scanned - exported} quarantined, not exported)")
    click.echo(str(out.expanduser().absolute()))
