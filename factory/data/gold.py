"""Import a hand-labelled gold set (CSV, Parquet or JSONL) into contract Parquet.

Labels come either as one column of category ids (a JSON list, or a string separated by ';', '|' or ',')
or as one 0/1 column per category id. Unknown labels, an empty labels cell, 'none' next to a category and
two copies of a sentence with different labels stop the import with their row numbers (they are almost
always a typo or a different guideline); empty sentences and exact duplicates are dropped and counted,
because they are harmless to drop but the user should know.

The gold folder is marked as `gold import`'s own (GOLD_MARKER); a non-empty folder without the mark, or
one holding files neither it nor the split wrote, is never written into, and a re-import replaces the
marked folder as a whole (built beside it, then swapped: factory.data.output_folder).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from factory.data.rows import (
    Rows,
    core_frame,
    load_sources,
    normalise_text,
    text_row_id,
)
from factory.core.errors import FactoryError
from factory.core.paths import DATA_DIR
from factory.data.corpus import locate_table_problem
from factory.data.output_folder import Writer, check_output_folder, claim_output_folder
from factory.data.store import atomic_write_parquet, shard_paths, utc_now
from factory.data.taxonomy import Taxonomy

DEFAULT_GOLD_DIR = DATA_DIR / "gold"
GOLD_SHARD = "part-00000.parquet"
GOLD_MARKER = "gold-import.json"  # names the command that wrote the folder; only such a folder is replaced
SPLIT_NAME = "split.json"  # factory.data.split.SPLIT_FILE (split imports gold, so it is named here too)
_LABEL_SEPARATORS = re.compile(r"[;|,]")
_TRUE = {"1", "1.0", "true", "yes", "y", "t"}
_FALSE = {"0", "0.0", "false", "no", "n", "f", ""}


@dataclass
class ImportSummary:
    path: Path
    rows_read: int = 0
    empty_dropped: int = 0
    duplicates_dropped: int = 0
    unlabelled_as_none: int = 0  # 0/1 columns without a 'none' column: a row with no 1 is 'none'
    rows_written: int = 0
    label_counts: Counter = field(default_factory=Counter)
    label_format: str = ""
    fingerprint: str = ""
    stale_split: Path | None = None  # a frozen split.json that no longer matches the imported gold


def read_records(path: Path) -> tuple[list[str], list[dict]]:
    """Return (column names, rows as dicts) for a CSV, Parquet or JSONL file."""
    path = Path(path)
    if not path.is_file():
        raise FactoryError(f"gold file not found: {path}")
    suffix = path.suffix.lower()
    separator = "\t" if suffix == ".tsv" else ","
    try:
        if suffix in (".csv", ".tsv"):
            _refuse_broken_csv(path, separator)
            # Every cell as a string: a labels cell like "1,2" must not become a number.
            frame = pl.read_csv(path, infer_schema=False, separator=separator)
            return frame.columns, frame.to_dicts()
        if suffix in (".parquet", ".pq"):
            frame = pl.read_parquet(path)
            return frame.columns, frame.to_dicts()
    except pl.exceptions.NoDataError:
        raise FactoryError(f"gold file {path} is empty") from None
    except FactoryError:
        raise
    except Exception as exc:  # polars raises several error types (and pages of hints) for malformed files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactoryError(f"cannot read {path}: {first}") from None
    if suffix in (".jsonl", ".ndjson", ".json"):
        return _read_jsonl(path)
    raise FactoryError(f"unsupported gold file type {suffix!r} ({path}); use .csv, .parquet or .jsonl")


def _refuse_broken_csv(path: Path, separator: str) -> None:
    """A ragged row or a quote left open, named by its line, before the table reader (whose message is a
    page of hints without one) sees the file; gold files are small, so the extra pass costs little."""
    problem = locate_table_problem(path, "csv", delimiter=separator)
    if problem:
        raise FactoryError(f"cannot read {path} as CSV: {problem}")


def _read_jsonl(path: Path) -> tuple[list[str], list[dict]]:
    records: list[dict] = []
    columns: dict[str, None] = {}
    with path.open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            try:
                line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise FactoryError(f"{path}, line {line_no}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                                   f"{exc.start + 1}); convert the file to UTF-8 first") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FactoryError(f"{path}, line {line_no}: not valid JSON ({exc.msg})") from None
            if not isinstance(record, dict):
                raise FactoryError(f"{path}, line {line_no}: expected a JSON object per line")
            columns.update(dict.fromkeys(record))
            records.append(record)
    return list(columns), records


def parse_label_cell(value: object, row_no: int) -> list[str]:
    """One labels cell -> list of ids (not yet validated). Accepts a list, a JSON list or a separated string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = value
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except json.JSONDecodeError:
                raise FactoryError(f"row {row_no}: labels {text!r} look like a JSON list but do not parse") from None
            if not isinstance(items, list):
                raise FactoryError(f"row {row_no}: labels must be a list, got {text!r}")
        else:
            items = _LABEL_SEPARATORS.split(text)
    else:
        raise FactoryError(f"row {row_no}: labels must be a list or a string, got {type(value).__name__}")
    return [str(item).strip().lower() for item in items if item is not None and str(item).strip()]


def _flag(value: object, column: str, row_no: int) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise FactoryError(f"row {row_no}: column {column!r} must be 0/1, got {value!r}")


def extract_labels(
    columns: list[str], records: list[dict], taxonomy: Taxonomy, labels_column: str
) -> tuple[list[list[str]], str]:
    """Raw label lists per record, from a labels column or from one 0/1 column per category."""
    if labels_column in columns:
        labels = [parse_label_cell(r.get(labels_column), i) for i, r in enumerate(records, 1)]
        _refuse_rows([i for i, l in enumerate(labels, 1) if not l], len(records),
                     f"have an empty labels cell (column {labels_column!r}); write 'none' for a sentence of no category")
        return labels, f"column {labels_column!r}"
    flag_columns = [cid for cid in taxonomy.all_ids if cid in columns]
    if not flag_columns:
        raise FactoryError(
            f"no labels column {labels_column!r} and no 0/1 columns named after categories "
            f"({', '.join(taxonomy.category_ids)}); columns found: {', '.join(columns)}"
        )
    labels = [[c for c in flag_columns if _flag(r.get(c), c, i)] for i, r in enumerate(records, 1)]
    if taxonomy.none.id in flag_columns:  # with a 'none' column, a row of zeros is a mistake, not 'none'
        _refuse_rows([i for i, l in enumerate(labels, 1) if not l], len(records),
                     f"have 0 in every label column, '{taxonomy.none.id}' included")
    return labels, f"0/1 columns ({len(flag_columns)} of {len(taxonomy.all_ids)} ids)"


def _refuse_rows(rows: list[int], total: int, what: str) -> None:
    if rows:
        listed = ", ".join(map(str, rows[:5])) + (", ..." if len(rows) > 5 else "")
        raise FactoryError(f"{len(rows)} of {total} row(s) {what} (row{'s' if len(rows) > 1 else ''} {listed})")


def _check_unknown(raw_labels: list[list[str]], taxonomy: Taxonomy) -> None:
    known = set(taxonomy.all_ids)
    unknown: dict[str, list[int]] = {}
    for row_no, labels in enumerate(raw_labels, 1):
        for label in labels:
            if label not in known:
                unknown.setdefault(label, []).append(row_no)
    if unknown:
        listed = "; ".join(
            f"{label!r} ({len(rows)} row{'s' if len(rows) > 1 else ''}, first row {rows[0]})"
            for label, rows in sorted(unknown.items())
        )
        raise FactoryError(f"labels not in the taxonomy: {listed}. Known ids: {', '.join(taxonomy.all_ids)}")
    none = taxonomy.none.id
    _refuse_rows([i for i, l in enumerate(raw_labels, 1) if none in l and set(l) != {none}], len(raw_labels),
                 f"have '{none}' together with a category ('{none}' is exclusive)")


def build_gold_rows(
    columns: list[str], records: list[dict], taxonomy: Taxonomy, text_column: str, labels_column: str, path: Path
) -> tuple[Rows, ImportSummary]:
    summary = ImportSummary(path=path, rows_read=len(records))
    if not records:
        raise FactoryError(f"gold file {path} has no rows")
    if text_column not in columns:
        raise FactoryError(f"{path}: no text column {text_column!r} (use --text-column); columns found: {', '.join(columns)}")
    raw_labels, summary.label_format = extract_labels(columns, records, taxonomy, labels_column)
    _check_unknown(raw_labels, taxonomy)

    rows = Rows()
    first: dict[str, tuple[int, list[str]]] = {}  # row_id -> (row number, labels) of its first copy
    for row_no, (record, labels) in enumerate(zip(records, raw_labels), 1):
        text = record.get(text_column)
        if text_column not in record:
            raise FactoryError(f"{path}, row {row_no}: no {text_column!r} field (--text-column)")
        if text is not None and not isinstance(text, (str, int, float)):
            raise FactoryError(f"{path}, row {row_no}: {text_column!r} is a {type(text).__name__}, not a string")
        text = "" if text is None else " ".join(str(text).split())
        if "\x00" in text:
            raise FactoryError(f"{path}, row {row_no}: the sentence contains a NUL character; remove it first")
        if not text:
            summary.empty_dropped += 1
            continue
        row_id = text_row_id(text)
        normalised = taxonomy.normalise_labels(labels)
        if row_id in first:
            first_row, first_labels = first[row_id]
            if first_labels != normalised:
                raise FactoryError(f"{path}: rows {first_row} and {row_no} hold the same sentence with different "
                                   f"labels ({'|'.join(first_labels)} vs {'|'.join(normalised)}): {text[:80]!r}; "
                                   "keep one of them")
            summary.duplicates_dropped += 1
            continue
        if not labels:
            summary.unlabelled_as_none += 1
        first[row_id] = (row_no, normalised)
        rows.row_ids.append(row_id)
        rows.sources.append("gold")
        rows.texts.append(text)
        rows.labels.append(normalised)
    if not rows.texts:
        raise FactoryError(f"gold file {path}: all {len(records)} rows have an empty sentence in column {text_column!r}")
    summary.rows_written = len(rows)
    summary.label_counts = rows.label_counts()
    summary.fingerprint = gold_fingerprint(rows)
    return rows, summary


def gold_fingerprint(rows: Rows) -> str:
    """Order-independent hash of sentences and labels: the split is only valid for this exact gold set."""
    digest = hashlib.sha256()
    for line in sorted(f"{r}\t{t}\t{'|'.join(l)}" for r, t, l in zip(rows.row_ids, rows.texts, rows.labels)):
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _is_legacy_gold(out_dir: Path) -> bool:
    """Written before the marker existed: exactly the shard (and the frozen split) of an earlier import."""
    names = {p.name for p in out_dir.iterdir()}
    if names - {GOLD_SHARD, SPLIT_NAME} or GOLD_SHARD not in names:
        return False
    try:
        frame = pl.read_parquet(out_dir / GOLD_SHARD)
    except (pl.exceptions.PolarsError, OSError):
        return False
    return frame.columns == ["row_id", "source", "text", "labels"] and frame.get_column("source").eq("gold").all()


# The frozen split (compare, promotion) and the promotion record live beside the gold shard and outlive a
# re-import; anything else gold import did not write makes the folder someone else's.
GOLD_WRITER = Writer("gold import", marker=GOLD_MARKER, companions=frozenset({SPLIT_NAME, "promoted.jsonl"}),
                     own_files=frozenset({GOLD_SHARD}), legacy=_is_legacy_gold)


def check_gold_out(out_dir: Path) -> bool:
    """Whether `out_dir` may receive gold: True when it holds an earlier import (to be replaced), False when
    it is new or empty; an error for anything else, so no file the import did not write is ever touched."""
    return check_output_folder(Path(out_dir), GOLD_WRITER)


def write_gold(rows: Rows, out_dir: Path, source: Path | None = None, before_swap=None) -> Path:
    """Write the gold folder: built beside it, then swapped in whole (output_folder); an earlier import's
    frozen split and promotion record are carried over. `before_swap(folder)` may add or replace files in
    the new folder before it takes the old one's place."""
    with claim_output_folder(Path(out_dir), GOLD_WRITER) as folder:
        atomic_write_parquet(core_frame(rows.row_ids, "gold", rows.texts, rows.labels), folder.build / GOLD_SHARD)
        if before_swap is not None:
            before_swap(folder.build)
        folder.marker.update(source=str(source) if source else None, rows=len(rows),
                             fingerprint=gold_fingerprint(rows), imported_at=utc_now().isoformat())
    return Path(out_dir) / GOLD_SHARD


def import_gold(
    path: Path, taxonomy: Taxonomy, out_dir: Path = DEFAULT_GOLD_DIR, text_column: str = "text", labels_column: str = "labels"
) -> ImportSummary:
    check_gold_out(Path(out_dir))  # refuse a foreign folder before reading anything
    columns, records = read_records(Path(path))
    rows, summary = build_gold_rows(columns, records, taxonomy, text_column, labels_column, Path(path))
    write_gold(rows, out_dir, Path(path))
    summary.stale_split = _stale_split(Path(out_dir) / "split.json", summary.fingerprint)
    return summary


def _stale_split(split_file: Path, fingerprint: str) -> Path | None:
    """The frozen split, when it was made for other gold data (compare will then ask for --resplit)."""
    if not split_file.is_file():
        return None
    try:
        frozen = json.loads(split_file.read_text(encoding="utf-8")).get("gold_fingerprint")
    except (OSError, ValueError, AttributeError):
        return split_file
    return None if frozen == fingerprint else split_file


def load_gold(gold_dir: Path, taxonomy: Taxonomy, cache_dir: Path | None = None) -> Rows:
    gold_dir = Path(gold_dir)
    if not gold_dir.is_dir() or not shard_paths(gold_dir, any_name=True):
        raise FactoryError(f"no gold data in {gold_dir}; import it first with `gold import PATH`")
    rows = load_sources([gold_dir], "gold", taxonomy, cache_dir)
    if not rows.texts:
        raise FactoryError(f"gold data in {gold_dir} is empty")
    return rows


def normalised_texts(rows: Rows) -> list[str]:
    return [normalise_text(t) for t in rows.texts]


def read_gold_any(path: Path, taxonomy: Taxonomy) -> Rows:
    """Gold from an imported folder (`gold import`) or straight from a CSV / Parquet / JSONL file with
    `text` and `labels` (what the quality commands accept with --gold)."""
    path = Path(path)
    if path.is_dir():
        return load_gold(path, taxonomy)
    columns, records = read_records(path)
    rows, _ = build_gold_rows(columns, records, taxonomy, "text", "labels", path)
    return rows


def read_negatives(path: Path, taxonomy: Taxonomy) -> Rows:
    """Ordinary clinical sentences labelled 'none' (any gold format); a sentence with a category is an error."""
    rows = read_gold_any(Path(path), taxonomy)
    labelled = [i for i, labels in enumerate(rows.labels) if labels != [taxonomy.none.id]]
    if labelled:
        raise FactoryError(f"--negatives {path}: {len(labelled)} sentence(s) carry a category (e.g. "
                           f"{rows.texts[labelled[0]]!r}); it takes 'none' sentences only")
    return rows
