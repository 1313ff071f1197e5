"""Write the JSON schemas derived from the taxonomy, so they are reviewable files in schemas/."""

from __future__ import annotations

import json
from pathlib import Path

from factory.data.store import atomic_write_bytes, ensure_writable_dir
from factory.data.taxonomy import Taxonomy, label_schema, synthesis_schema


def schema_files(taxonomy: Taxonomy, per_request: int = 5) -> dict[str, dict]:
    return {
        "label.schema.json": label_schema(taxonomy),
        "synthesize.schema.json": synthesis_schema(taxonomy, per_request),
    }


def write_schemas(taxonomy: Taxonomy, out: Path, per_request: int = 5) -> list[Path]:
    ensure_writable_dir(out)
    written = []
    for name, schema in schema_files(taxonomy, per_request).items():
        path = out / name
        atomic_write_bytes(path, (json.dumps(schema, indent=2) + "\n").encode("utf-8"))
        written.append(path)
    return written
