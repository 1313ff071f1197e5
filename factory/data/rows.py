"""Read and write contract Parquet (core columns row_id, source, text, labels; see docs/data-contract.md).

Reading goes through Hugging Face `datasets` so gold, silver and bronze folders (whose extra columns differ)
are reduced to the same core features and concatenated. Writing goes through Polars, to a temporary file
renamed into place, so a shard is either complete or absent (factory.data.store.atomic_write_parquet).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.store import CORE_SCHEMA, shard_paths, shard_read_error
from factory.data.taxonomy import Taxonomy

CORE_COLUMNS = ("row_id", "source", "text", "labels")
SOURCES = ("gold", "silver", "bronze")
SYNTHETIC_SOURCES = ("silver", "bronze")

# Punctuation (and '_', which \w would keep) becomes a space, so "18/30" and "18 30" compare equal
# without gluing words together.
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_WHITESPACE = re.compile(r"\s+")


def ensure_hf_offline() -> None:
    """Nothing is downloaded at run time: set before `datasets`/`transformers` are imported."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(name, "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def normalise_text(text: str) -> str:
    """Comparison key for duplicates and leakage: NFKC, lowercase, punctuation stripped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = _PUNCTUATION.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def text_row_id(text: str) -> str:
    import hashlib

    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:32]


def core_frame(row_ids: list[str], source: str, texts: list[str], labels: list[list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"row_id": row_ids, "source": [source] * len(texts), "text": texts, "labels": labels},
        schema=CORE_SCHEMA,
    )


@dataclass
class Rows:
    """Core columns as plain Python lists: what the trainer consumes."""

    row_ids: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    labels: list[list[str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices) -> "Rows":
        idx = list(indices)
        return Rows(
            [self.row_ids[i] for i in idx],
            [self.sources[i] for i in idx],
            [self.texts[i] for i in idx],
            [self.labels[i] for i in idx],
        )

    def __add__(self, other: "Rows") -> "Rows":
        return Rows(
            self.row_ids + other.row_ids,
            self.sources + other.sources,
            self.texts + other.texts,
            self.labels + other.labels,
        )

    def label_counts(self) -> Counter:
        return Counter(label for labels in self.labels for label in labels)


def _shard_without(shards: list[Path], columns: list[str]) -> Path:
    """The first shard that lacks one of `columns` (the folder's first shard when none can be told apart)."""
    for shard in shards:
        try:
            if any(c not in pl.read_parquet_schema(shard) for c in columns):
                return shard
        except (pl.exceptions.PolarsError, OSError):
            return shard
    return shards[0]


# Not store.read_dataset: a user's folder may hold any Parquet file names and column types (large_string,
# extra columns), which `datasets` casts to the contract's features, cached for the trainer that consumes it.
def load_contract_dataset(folder: Path, role: str, taxonomy: Taxonomy, cache_dir: Path | None = None):
    """Load a folder of contract shards with `datasets`, keep the core columns, validate the labels.

    `role` is what the user said the folder is (gold/silver/bronze); rows whose `source` disagrees are an
    error, because mixing up --silver and --bronze would silently corrupt a comparison.
    """
    ensure_hf_offline()
    import datasets

    datasets.disable_progress_bars()
    folder = Path(folder)
    if not folder.is_dir():
        raise FactoryError(f"{role} folder not found: {folder}")
    shards = shard_paths(folder, any_name=True)
    if not shards:
        raise FactoryError(f"{role} folder {folder} has no Parquet shards (part-*.parquet)")
    try:
        ds = datasets.load_dataset(
            "parquet",
            data_files=[str(p) for p in shards],
            split="train",
            cache_dir=str(cache_dir) if cache_dir else None,
        )
    except Exception as exc:  # noqa: BLE001 - pyarrow/datasets raise many types for unreadable files
        raise shard_read_error(shards, exc) from None
    missing = [c for c in CORE_COLUMNS if c not in ds.column_names]
    if missing:
        raise FactoryError(f"{_shard_without(shards, missing)}: missing contract column(s) {', '.join(missing)} "
                           "(see docs/data-contract.md)")
    ds = ds.select_columns(list(CORE_COLUMNS))
    try:
        ds = ds.cast(datasets.Features({
            "row_id": datasets.Value("large_string"),
            "source": datasets.Value("large_string"),
            "text": datasets.Value("large_string"),
            "labels": datasets.LargeList(datasets.Value("large_string")),
        }))
    except Exception as exc:  # noqa: BLE001 - arrow cast errors: a contract column of another type
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FactoryError(f"{folder}: a contract column has the wrong type ({reason}); see docs/data-contract.md") from None
    wrong_source = sorted({s for s in ds["source"] if s != role})
    if wrong_source:
        raise FactoryError(f"{folder} was given as {role} but holds rows with source {', '.join(map(repr, wrong_source))}")
    unknown = sorted({lab for labels in ds["labels"] for lab in (labels or []) if lab not in taxonomy.all_ids})
    if unknown:
        raise FactoryError(f"{folder}: labels not in the taxonomy: {', '.join(unknown)}")
    return ds


def dataset_to_rows(ds, taxonomy: Taxonomy) -> Rows:
    """Drop empty sentences and apply the taxonomy's label rules ('none' exclusive, file order)."""
    rows = Rows()
    for row_id, source, text, labels in zip(ds["row_id"], ds["source"], ds["text"], ds["labels"]):
        if not text or not text.strip():
            continue
        rows.row_ids.append(row_id)
        rows.sources.append(source)
        rows.texts.append(text)
        rows.labels.append(taxonomy.normalise_labels(list(labels or [])))
    return rows


def load_sources(folders: list[Path], role: str, taxonomy: Taxonomy, cache_dir: Path | None = None) -> Rows:
    """Load and concatenate several folders of one role (e.g. the silver of several runs)."""
    ensure_hf_offline()
    import datasets

    parts = [load_contract_dataset(f, role, taxonomy, cache_dir) for f in folders]
    if not parts:
        return Rows()
    return dataset_to_rows(datasets.concatenate_datasets(parts), taxonomy)


@dataclass
class LeakageReport:
    removed: dict[str, int] = field(default_factory=dict)  # source -> count
    rows: list[tuple[str, str]] = field(default_factory=list)  # (source, text) of every removed row

    @property
    def examples(self) -> list[str]:
        return [text for _, text in self.rows[:5]]

    @property
    def total(self) -> int:
        return sum(self.removed.values())


def remove_test_leakage(rows: Rows, test_texts: list[str]) -> tuple[Rows, LeakageReport]:
    """Drop training rows whose sentence equals a gold test sentence (exactly or after normalisation).

    A synthetic copy of a test sentence would let the model memorise the answer and inflate test scores.
    """
    test_keys = {normalise_text(t) for t in test_texts}
    keep: list[int] = []
    report = LeakageReport()
    for i, text in enumerate(rows.texts):
        if normalise_text(text) in test_keys:
            report.removed[rows.sources[i]] = report.removed.get(rows.sources[i], 0) + 1
            report.rows.append((rows.sources[i], text))
        else:
            keep.append(i)
    return rows.subset(keep), report
