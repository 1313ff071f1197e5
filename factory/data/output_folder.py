"""One rule for every folder a command writes (compare, quality, train, predict, gold import, export).

- A folder that holds anything the command did not write is refused untouched, in one line naming the
  folder and what is in it. `--replace` never changes that: it only ever replaces the command's own output.
- A folder the command wrote earlier is recognised by its marker (a JSON file naming the command and
  listing the entries it wrote), or, for folders written before markers, by the writer's `legacy` check.
- The output is built in a hidden sibling folder and swapped in whole, so a reader (or a kill) sees the
  old folder or the new one, never a mix. Files other commands add to the folder (`companions`, e.g. the
  frozen split in a gold folder) are carried over.
- Commands whose output is used elsewhere (a model, predictions, a shared bundle) replace their own
  folder only with `--replace`; reports and imports that recipes rerun replace it on a rerun.
- Nothing is written into (or below) a run's dataset folders (silver, bronze, failed, side tables):
  readers take every Parquet file there for rows.
- Default folders are unique: a timestamp plus a random suffix, so two commands started in the same
  second never share one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from factory.core.errors import FactoryError
import polars as pl

from factory.data.store import atomic_write_file, atomic_write_json, marker_names, shard_paths, utc_now

MARKER = "written-by.json"
# Folders of a run whose Parquet files are rows: a dataset, its side tables, the spent synthesis requests.
DATASET_FOLDER = re.compile(r"^(silver|bronze|failed)(_[a-z0-9_]+)?$")
_SHOWN = 3  # entries named in a refusal before "and N more"


@dataclass(frozen=True)
class Writer:
    """A command that writes a folder, and how to recognise what it wrote."""

    command: str  # as typed after bin/generate: "compare", "gold import"
    marker: str = MARKER
    needs_replace: bool = False  # its own earlier output is replaced only with --replace
    companions: frozenset[str] = frozenset()  # files other commands add to its folder; kept on a rerun
    own_files: frozenset[str] = frozenset()  # what a marker without a "files" list stands for (older markers)
    legacy: Callable[[Path], bool] | None = None  # recognises a folder it wrote before it left markers
    marks_itself: bool = False  # the command writes its marker itself (export's manifest.json)

    @property
    def written_by(self) -> str:
        return f"bin/generate {self.command}"


def unique_default(parent: Path) -> Path:
    """A new folder name under `parent`: the time to the second, then a random suffix (two commands started
    in the same second must not share a folder)."""
    while True:
        folder = Path(parent) / f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
        if not folder.exists():
            return folder


def _entries(folder: Path) -> list[str]:
    try:
        return sorted(p.name for p in folder.iterdir())
    except OSError as exc:
        raise FactoryError(f"cannot list {folder}: {exc.strerror or exc}") from None


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _looks_like_run(folder: Path) -> bool:
    return ((folder / "manifest.json").is_file() or (folder / ".lock").exists()
            or any(shard_paths(folder / name) for name in ("silver", "bronze")))


def dataset_folder_above(path: Path) -> Path | None:
    """The run dataset folder that `path` is, or lies under, if any."""
    path = path.expanduser().absolute()
    for folder in (path, *path.parents):
        if DATASET_FOLDER.match(folder.name) and _looks_like_run(folder.parent):
            return folder
    return None


def recorded_files(folder: Path, writer: Writer) -> set[str] | None:
    """The paths (relative, `/`-separated) `writer` wrote in `folder`, by its marker's "files" (a list, or
    an object keyed by path) or its legacy check; None when it did not write the folder."""
    marker = folder / writer.marker
    if marker.is_file() and marker_names(marker, writer.written_by):
        listed = json.loads(marker.read_text(encoding="utf-8")).get("files")
        return set(listed) if isinstance(listed, (list, dict)) else set(writer.own_files)
    if writer.legacy is not None and writer.legacy(folder):
        return set(_entries(folder))
    return None


def foreign_entries(folder: Path, writer: Writer) -> list[str] | None:
    """What in `folder` the writer did not write (an empty list: all its own); None: not its folder at all.
    A listed folder covers what is inside it; anything else is judged file by file."""
    own = recorded_files(folder, writer)
    if own is None:
        return None
    allowed = own | writer.companions | {writer.marker}
    foreign = []
    for path in sorted(folder.rglob("*")):
        parts = path.relative_to(folder).parts
        if any("/".join(parts[:i]) in allowed for i in range(1, len(parts) + 1)):
            continue
        if path.is_dir() and not path.is_symlink() and any(path.iterdir()):
            continue  # judged by what it holds
        foreign.append("/".join(parts))
    return foreign


@dataclass
class OutputFolder:
    """A claimed output folder: write into `build`, then `commit()` swaps it in (or `abandon()`)."""

    path: Path
    writer: Writer
    replacing: bool
    build: Path = field(init=False)
    marker: dict = field(default_factory=dict)  # what `with` adds to the marker when it commits

    def __post_init__(self) -> None:
        # Beside the target (same file system, so the swap is a rename); the pid keeps concurrent runs apart.
        self.build = self.path.parent / f".{self.path.name}.building-{os.getpid()}"
        shutil.rmtree(self.build, ignore_errors=True)  # left by a killed process that had this pid
        try:
            self.build.mkdir(parents=True)
        except OSError as exc:
            raise FactoryError(f"cannot create output folder {self.path}: {exc.strerror or exc}") from None

    def final(self, path: Path) -> Path:
        """Where a file written under `build` will be once the folder is swapped in."""
        return self.path / Path(path).relative_to(self.build)

    def commit(self, **marker: object) -> Path:
        try:
            files = sorted(set(_entries(self.build)) - {self.writer.marker})  # before companions: not its own
            self._carry_companions()
            if not self.writer.marks_itself:
                atomic_write_json(self.build / self.writer.marker, {
                    "written_by": self.writer.written_by, "files": files, "written_at": utc_now().isoformat(), **marker})
            self._swap()
        except OSError as exc:
            self.abandon()
            raise FactoryError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        except BaseException:
            self.abandon()
            raise
        return self.path

    def abandon(self) -> None:
        shutil.rmtree(self.build, ignore_errors=True)

    def _carry_companions(self) -> None:
        if not self.replacing:
            return
        for name in self.writer.companions:
            source, target = self.path / name, self.build / name
            if source.exists() and not target.exists():  # what the new output wrote itself wins
                (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)

    def _swap(self) -> None:
        if not self.replacing:
            try:
                if self.path.exists():
                    self.path.rmdir()  # empty when claimed; a rename cannot replace a folder on every platform
                os.rename(self.build, self.path)
            except OSError:
                raise FactoryError(f"--out {self.path} was written by another process meanwhile; nothing of it "
                                   "was changed and this output was not kept") from None
            return
        if foreign_entries(self.path, self.writer) != []:  # something was added while the output was built
            raise FactoryError(f"--out {self.path} changed while `{self.writer.command}` ran (it now holds files it did "
                               "not write); nothing of it was changed and this output was not kept")
        old = self.path.parent / f".{self.path.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(self.path, old)
        try:
            os.rename(self.build, self.path)
        except OSError:
            os.rename(old, self.path)
            raise
        shutil.rmtree(old, ignore_errors=True)

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.commit(**self.marker)
        else:
            self.abandon()


def write_report(path: Path, writer: Writer, files: dict[str, pl.DataFrame | dict | list | str | bytes],
                 replace: bool = False, **marker: object) -> Path:
    """A report folder written whole: every file of `files` (name -> content, see store.atomic_write_file)
    is built beside `path` and the folder swapped in only once all are written, so a failure or a kill
    leaves the earlier report as it was. Refused, like any output folder, when it holds another's files."""
    with claim_output_folder(path, writer, replace) as folder:
        for name, content in files.items():
            atomic_write_file(folder.build / name, content)
        folder.marker.update(marker)
    return folder.path


def check_output_folder(path: Path, writer: Writer, replace: bool = False) -> bool:
    """Whether `path` may receive `writer`'s output, before any work is done: False when it is new or empty,
    True when it holds the writer's own earlier output (to be replaced); one error line otherwise."""
    path = Path(path).expanduser()
    what = f"`{writer.command}`"
    if path.exists() and not path.is_dir():
        raise FactoryError(f"--out {path} is a file; {what} writes a folder")
    present = _entries(path) if path.exists() else []
    foreign = foreign_entries(path, writer) if present else []
    if foreign is None:
        raise FactoryError(f"--out {path} is not empty and was not written by {what} (it holds {_listing(present)}); "
                           "nothing was changed. Choose a new or empty folder")
    if foreign:
        raise FactoryError(f"--out {path} holds {_listing(foreign)}, which {what} did not write; nothing was changed. "
                           "Move them out or choose a new folder")
    dataset = dataset_folder_above(path)
    if dataset is not None:
        raise FactoryError(f"--out {path} is inside the run's dataset folder {dataset.name}/ of {dataset.parent} "
                           "(its Parquet files are read as rows); nothing was changed. Choose a folder outside it")
    if present and writer.needs_replace and not replace:
        raise FactoryError(f"--out {path} is not empty: it holds an earlier {what} output; pass --replace to replace "
                           "it, or choose a new folder")
    return bool(present)


def claim_output_folder(path: Path, writer: Writer, replace: bool = False) -> OutputFolder:
    """Check `path` (check_output_folder) and start building its new content beside it."""
    path = Path(path).expanduser()
    replacing = check_output_folder(path, writer, replace)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FactoryError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
    return OutputFolder(path, writer, replacing)
