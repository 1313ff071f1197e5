"""Read clinical notes and split them into sentences.

Row contract (one per sentence): note_id, sentence_index, char_start, char_end, text — offsets index
into the note text, so every sentence can be traced back to its source.

Notes come as a folder of .txt files, a single .txt file, or a CSV / Parquet / JSONL table with a text
column. Splitting uses pysbd (rule-based, copes with clinical abbreviations such as b.i.d., p.o., y.o.)
after cutting at line breaks, so section headers and numbered plan items never glue to a sentence.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_SENTENCE_CHARS = 1000  # longer runs (lists without punctuation, pasted tables) are cut at spaces

_HEADER = re.compile(r"^[A-Z][A-Z &/()'.,-]{1,80}:?$")  # "ASSESSMENT AND PLAN:", "MEMORY CLINIC VISIT"
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")  # "1. ", "2) ", "- "
_WORD = re.compile(r"[A-Za-z]{2,}")


@dataclass(frozen=True)
class Note:
    note_id: str
    text: str


@dataclass(frozen=True)
class Sentence:
    note_id: str
    sentence_index: int
    char_start: int
    char_end: int
    text: str


def _read_txt(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FactoryError(
            f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); convert it to UTF-8 first"
        ) from None


def _txt_notes(paths: list[Path]) -> Iterator[Note]:
    for path in paths:
        yield Note(note_id=path.stem, text=_read_txt(path))


TABLE_BATCH_ROWS = 2048  # notes read at a time: a large table streams instead of loading whole


def _table_batches(path: Path, kind: str, columns: list[str]) -> Iterator[pl.DataFrame]:
    try:
        if kind == "csv":
            frame = pl.scan_csv(path, infer_schema=False, encoding="utf8")
        elif kind == "parquet":
            frame = pl.scan_parquet(path)
        else:
            frame = pl.scan_ndjson(path)
        yield from frame.select(columns).collect_batches(chunk_size=TABLE_BATCH_ROWS)
    except pl.exceptions.ColumnNotFoundError as exc:
        raise FactoryError(f"{path}: column not found ({str(exc).splitlines()[0]})") from None
    except pl.exceptions.NoDataError:
        raise FactoryError(f"{path} is empty") from None
    except (pl.exceptions.ComputeError, pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactoryError(f"cannot read {path} as {kind}: {first}") from None


def _table_columns(path: Path, kind: str) -> list[str]:
    try:
        if kind == "csv":
            return pl.read_csv(path, n_rows=0, infer_schema=False).columns
        if kind == "parquet":
            return list(pl.read_parquet_schema(path))
        return pl.read_ndjson(path, n_rows=1).columns
    except pl.exceptions.NoDataError:
        raise FactoryError(f"{path} is empty") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactoryError(f"cannot read {path} as {kind}: {first}") from None


def _table_notes(path: Path, kind: str, text_column: str, id_column: str | None) -> Iterator[Note]:
    available = _table_columns(path, kind)
    for wanted, flag in ((text_column, "--text-column"), (id_column, "--id-column")):
        if wanted is not None and wanted not in available:
            raise FactoryError(f"{path} has no column {wanted!r} ({flag}); columns: {', '.join(available)}")
    columns = [text_column] + ([id_column] if id_column and id_column != text_column else [])
    index = 0
    for frame in _table_batches(path, kind, columns):
        ids = frame.get_column(id_column).cast(pl.String) if id_column else None
        for row, text in enumerate(frame.get_column(text_column).cast(pl.String)):
            note_id = ids[row] if ids is not None and ids[row] is not None else f"{path.stem}:{index}"
            yield Note(note_id=str(note_id), text=text or "")
            index += 1
    if index == 0:
        raise FactoryError(f"{path} has no rows")


def iter_notes(path: str | Path, text_column: str = "text", id_column: str | None = None) -> Iterator[Note]:
    path = Path(path)
    if not path.exists():
        raise FactoryError(f"notes not found: {path}")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.txt") if p.is_file())
        if not files:
            raise FactoryError(f"no .txt notes in folder {path}")
        return _txt_notes(files)
    suffix = path.suffix.lower()
    if suffix == ".txt":
        return _txt_notes([path])
    if suffix in TABLE_SUFFIXES:
        return _table_notes(path, TABLE_SUFFIXES[suffix], text_column, id_column)
    raise FactoryError(f"unsupported notes file {path}: use a folder of .txt, or .txt, .csv, .parquet, .jsonl")


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _is_noise(segment: str) -> bool:
    """Section headers and fragments without words are not sentences worth labelling."""
    return bool(_HEADER.match(segment)) or not _WORD.search(segment)


def _cut_long(text: str, start: int) -> Iterator[tuple[int, str]]:
    while len(text) > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", 0, MAX_SENTENCE_CHARS)
        cut = cut if cut > 0 else MAX_SENTENCE_CHARS
        yield start, text[:cut]
        rest = text[cut:]
        start += cut + (len(rest) - len(rest.lstrip()))
        text = rest.lstrip()
    if text:
        yield start, text


def _line_spans(text: str) -> Iterator[tuple[int, str]]:
    offset = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        enumerator = _ENUMERATOR.match(body)
        skip = enumerator.end() if enumerator else len(body) - len(body.lstrip())
        stripped = body[skip:].rstrip()
        if stripped:
            yield offset + skip, stripped
        offset += len(line)


def split_sentences(note: Note) -> Iterator[Sentence]:
    index = 0
    for line_start, line in _line_spans(note.text):
        cursor = 0
        for piece in _segmenter().segment(line):
            piece_text = piece.strip()
            if not piece_text:
                continue
            found = line.find(piece_text, cursor)
            start = found if found >= 0 else cursor
            cursor = start + len(piece_text)
            for start_in_line, text in _cut_long(piece_text, start):
                if _is_noise(text):
                    continue
                begin = line_start + start_in_line
                yield Sentence(note.note_id, index, begin, begin + len(text), text)
                index += 1


def iter_sentences(notes: Iterator[Note]) -> Iterator[Sentence]:
    """Every sentence once: empties and exact duplicates (across the whole corpus) are dropped."""
    seen: set[bytes] = set()  # 16-byte digests, not the texts: memory stays small for a large corpus
    for note in notes:
        for sentence in split_sentences(note):
            digest = hashlib.blake2b(sentence.text.encode("utf-8"), digest_size=16).digest()
            if digest in seen:
                continue
            seen.add(digest)
            yield sentence
