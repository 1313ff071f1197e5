"""`bin/generate check-phi` and `bin/generate export`: the output; the gate itself is factory/quality/privacy.py."""

from __future__ import annotations

import click

from factory.cli.options import command
from factory.core.specs import CheckPhiSpec, ExportSpec


@command(CheckPhiSpec)
def check_phi(spec: CheckPhiSpec) -> None:
    from factory.quality.privacy import scan_bronze

    info, shard = scan_bronze(spec.run, spec.notes, spec.text_column, spec.gold, spec.ngram, spec.no_ner)
    click.echo(f"rows scanned: {info['rows']}")
    click.echo(f"passed: {info['passed']}")
    click.echo(f"quarantined: {info['quarantined']}")
    for kind, count in sorted(info["quarantined_by_type"].items(), key=lambda kv: (-kv[1], kv[0])):
        click.echo(f"  {kind}: {count}")
    click.echo(str(shard))


@command(ExportSpec)
def export(spec: ExportSpec) -> None:
    from factory.quality.privacy import export_bundle

    exported, scanned = export_bundle(spec.run, spec.out, spec.license, spec.replace)
    click.echo(f"exported {exported} of {scanned} bronze rows ({scanned - exported} quarantined, not exported)")
    click.echo(str(spec.out.expanduser().absolute()))
