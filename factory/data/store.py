"""Parquet shards via Polars: content-hash keys, explicit column types, atomic commits.

A shard is written to a hidden temporary file in the same folder, flushed to disk and renamed into
place, so a reader (or a rerun after a crash) sees each shard complete or not at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError

KEY_VERSION = 1  # bump when the fields that identify a row change; old keys then read as new work
_SHARD = re.compile(r"^part-(\d{5})\.parquet$")

CORE_SCHEMA = {
    "row_id": pl.String,
    "source": pl.String,
    "text": pl.String,
    "labels": pl.List(pl.String),
}

LINEAGE_SCHEMA = {
    "run_id": pl.String,
    "model_path": pl.String,
    "model_hash": pl.String,
    "engine": pl.String,
    "prompt_hash": pl.String,
    "schema_hash": pl.String,
    "taxonomy_hash": pl.String,
    "sampling": pl.String,
    "seed": pl.Int64,
    "finish_reason": pl.String,
    "prompt_tokens": pl.Int32,
    "completion_tokens": pl.Int32,
    "attempts": pl.Int32,
    "created_at": pl.Datetime("us", "UTC"),
}

SILVER_SCHEMA = {
    **CORE_SCHEMA,
    "evidence": pl.String,
    "note_id": pl.String,
    "sentence_index": pl.Int32,
    "char_start": pl.Int32,
    "char_end": pl.Int32,
    "logprob_confidence": pl.Float64,  # the LLM's mean per-token probability of its answer; null without logprobs
    **LINEAGE_SCHEMA,
}

BRONZE_SCHEMA = {
    **CORE_SCHEMA,
    "category": pl.String,
    "attributes": pl.String,
    "request_key": pl.String,
    "request_index": pl.Int32,
    "item_index": pl.Int32,
    **LINEAGE_SCHEMA,
}

FAILED_SCHEMA = {
    "task": pl.String,
    "row_id": pl.String,
    "text": pl.String,
    "error": pl.String,
    "raw_output": pl.String,
    **LINEAGE_SCHEMA,
}


def canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def content_key(**fields: object) -> str:
    """Key of what determines an output (input, model, prompt, schema, sampling, seed), not of knobs."""
    payload = canonical_json({"key_version": KEY_VERSION, **fields})
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def schema_hash(schema: dict) -> str:
    return hashlib.sha256(canonical_json(schema).encode("utf-8")).hexdigest()


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise FactoryError(f"cannot write {path}: {exc.strerror or exc}") from None


def atomic_write_json(path: Path, value: object) -> None:
    atomic_write_bytes(path, (json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n").encode("utf-8"))


def atomic_write_parquet(frame: pl.DataFrame, path: Path) -> None:
    """The one Parquet writer of the factory: to a hidden temporary sibling (its folder made if needed),
    fsynced, then renamed into place, so a reader or a kill sees the whole file or none of it."""
    if not path.parent.is_dir():
        ensure_writable_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        frame.write_parquet(tmp, compression="zstd", statistics=True)
        with tmp.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, pl.exceptions.PolarsError) as exc:  # polars reports a full disk as a ComputeError
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
        raise FactoryError(f"cannot write {path}: {reason}") from None


def atomic_write_file(path: Path, content: pl.DataFrame | dict | list | str | bytes) -> None:
    """One file of a report, atomically: a table as Parquet, a dict or list as JSON, text as UTF-8."""
    if isinstance(content, pl.DataFrame):
        atomic_write_parquet(content, path)
    elif isinstance(content, (dict, list)):
        atomic_write_json(path, content)
    else:
        atomic_write_bytes(path, content.encode("utf-8") if isinstance(content, str) else content)


def ensure_writable_dir(path: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FactoryError(f"cannot create output folder {path}: {exc.strerror or exc}") from None
    if not os.access(path, os.W_OK):
        raise FactoryError(f"output folder is not writable: {path}")
    return path


def fsync_folder(folder: Path) -> None:
    """Make the renames and deletions in `folder` durable (a renamed shard survives a power cut)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: Path) -> None:
    """Delete the hidden temporary shards a killed writer left; only safe while holding the lock that
    serialises the folder's writers (no write is then in flight)."""
    for stale in folder.glob(".part-*.parquet.tmp-*"):
        stale.unlink(missing_ok=True)


def next_shard_path(folder: Path) -> Path:
    """The shard after the last committed one (`part-00000.parquet` in an empty folder)."""
    return _shard_path(folder, _next_number(folder))


def _next_number(folder: Path) -> int:
    return max((int(m.group(1)) + 1 for p in folder.iterdir() if (m := _SHARD.match(p.name))), default=0)


def _shard_path(folder: Path, number: int) -> Path:
    if number > 99999:
        raise FactoryError(f"{folder} has 100000 shards; no shard number is left")
    return folder / f"part-{number:05d}.parquet"


class ShardWriter:
    """Appends numbered shards (part-00000.parquet, ...) to one dataset folder."""

    def __init__(self, folder: Path, schema: dict[str, pl.DataType]):
        self.folder = ensure_writable_dir(folder)
        remove_stale_temps(folder)  # the run lock, held by the caller, makes this safe
        self.schema = schema
        self.rows_written = 0
        self._next = _next_number(folder)

    def write(self, rows: list[dict]) -> Path | None:
        if not rows:
            return None
        frame = pl.DataFrame(rows, schema=self.schema, strict=False).select(list(self.schema))
        path = _shard_path(self.folder, self._next)
        atomic_write_parquet(frame, path)
        self._next += 1
        self.rows_written += frame.height
        return path


def shard_paths(folder: Path, any_name: bool = False) -> list[Path]:
    """The committed shards of a folder, sorted: `part-NNNNN.parquet` (what the factory writes), or with
    `any_name` every visible `*.parquet` (a user's gold folder names its files as it likes). Hidden files
    (temporary shards of a writer at work or killed) are never listed."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    try:
        return sorted(p for p in folder.iterdir() if (_SHARD.match(p.name) if not any_name else
                                                     p.suffix == ".parquet" and not p.name.startswith(".")))
    except OSError as exc:
        raise FactoryError(f"cannot list {folder}: {exc.strerror or exc}{_check_hint(folder / 'x')}") from None


def shard_columns(folder: Path) -> list[str] | None:
    """The columns of a dataset folder's first committed shard; None when it has none yet."""
    paths = shard_paths(folder)
    if not paths:
        return None
    try:
        return list(pl.read_parquet_schema(paths[0]))
    except _READ_ERRORS as exc:
        raise damaged_file_error(paths[0], exc) from None


# Polars reports a damaged Parquet file (empty, truncated, garbage) without naming it, and a Rust panic as
# pyo3's PanicException, which is a BaseException.
_READ_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError, pl.exceptions.PanicException)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def run_folder_of(path: Path) -> Path | None:
    """The run folder a dataset or side-table file belongs to (`<run>/<folder>/<file>`), if it looks like one."""
    folder = Path(path).parent
    run = folder.parent
    if (run / "manifest.json").is_file() or re.match(r"^(silver|bronze|failed)(_[a-z_]+)?$", folder.name):
        return run
    return None


def _check_hint(path: Path) -> str:
    run = run_folder_of(path)
    return f"; the run folder is damaged: see `bin/generate runs --check {run}`" if run is not None else ""


def damaged_file_error(path: Path, exc: BaseException | str) -> FactoryError:
    reason = exc if isinstance(exc, str) else _first_line(exc)
    return FactoryError(f"cannot read {path}: {reason}{_check_hint(path)}")


def _locate(paths: list[Path], read_one, exc: BaseException) -> FactoryError:
    """Which shard made a read of several fail: the first that fails alone, else the first whose columns
    differ from the first shard's."""
    for path in paths:
        try:
            read_one(path)
        except _READ_ERRORS as one:
            return damaged_file_error(path, one)
    try:
        first = pl.read_parquet_schema(paths[0])
        for path in paths[1:]:
            if pl.read_parquet_schema(path) != first:
                return damaged_file_error(path, f"its columns differ from those of {paths[0].name}")
    except _READ_ERRORS:
        pass
    return damaged_file_error(paths[0].parent / "part-*.parquet", exc)


def shard_read_error(paths: list[Path], exc: BaseException) -> FactoryError:
    """One error line naming the shard (and its fault) that made another reader (`datasets`) fail on a folder."""
    return _locate(paths, pl.read_parquet, exc)


def read_shard(path: Path) -> pl.DataFrame:
    """One Parquet file, or one error line naming it."""
    try:
        return pl.read_parquet(path)
    except _READ_ERRORS as exc:
        raise damaged_file_error(path, exc) from None


def parquet_problem(path: Path) -> str | None:
    """Why a Parquet file cannot be read in full (None when it can): what `runs --check` looks for."""
    try:
        pl.read_parquet(path)
    except _READ_ERRORS as exc:
        return _first_line(exc)
    return None


def read_json(path: Path) -> object:
    """A JSON file, or one error line naming it."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise FactoryError(f"cannot read {path}: {exc.strerror or exc}{_check_hint(path)}") from None
    except ValueError as exc:  # also UnicodeDecodeError
        raise damaged_file_error(path, f"not valid JSON ({_first_line(exc)})") from None


def existing_values(folder: Path, column: str) -> set[str]:
    """Values of one column across committed shards (temporary files are ignored by the pattern)."""
    paths = shard_paths(folder)
    if not paths:
        return set()

    def read(chosen):
        return pl.scan_parquet(chosen).select(column).collect()

    try:
        return set(read(paths).get_column(column).to_list())
    except _READ_ERRORS as exc:
        raise _locate(paths, read, exc) from None


def read_dataset(folder: Path, relaxed: bool = False) -> pl.DataFrame:
    """Every committed shard of a folder as one table. With `relaxed`, shards whose columns differ (a side
    table written before one of its columns existed) are stacked by column name, missing columns null."""
    paths = shard_paths(folder)
    if not paths:
        raise FactoryError(f"no Parquet shards in {folder}")
    try:
        return pl.read_parquet(paths)
    except _READ_ERRORS as exc:
        if relaxed:
            try:
                return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
            except _READ_ERRORS:
                pass
        raise _locate(paths, pl.read_parquet, exc) from None


def read_key_values(folder: Path, column: str) -> set[str]:
    """Values of a key column across the committed shards that have it (a shard written before the column
    existed holds no key: its rows are work to redo)."""
    values: set[str] = set()
    for path in shard_paths(folder):
        try:
            if column in pl.read_parquet_schema(path):
                values.update(v for v in pl.read_parquet(path, columns=[column]).get_column(column).to_list()
                              if v is not None)
        except _READ_ERRORS as exc:
            raise damaged_file_error(path, exc) from None
    return values


def marker_names(marker: Path, writer: str) -> bool:
    """True when `marker`, the JSON file a command leaves in a folder it wrote, names `writer`; False when it
    is unreadable or names another writer (commands overwrite only folders they wrote)."""
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("written_by") == writer
    except (OSError, ValueError, AttributeError):
        return False
