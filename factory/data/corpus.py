"""Read clinical notes and split them into sentences.

Row contract (one per sentence): note_id, sentence_index, char_start, char_end, text — offsets index
into the note text, so every sentence can be traced back to its source.

Notes come as a folder of .txt files, a single .txt file, or a CSV / Parquet / JSONL table with a text
column. Splitting uses pysbd (rule-based, copes with clinical abbreviations such as b.i.d., p.o., y.o.)
after cutting at line breaks, so section headers and numbered plan items never glue to a sentence.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError

TABLE_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}
MAX_SENTENCE_CHARS = 1000  # longer runs (lists without punctuation, pasted tables) are cut at spaces
# pysbd's time grows faster than linearly with the length of what it is given (a 20 MB line never finished).
# A line longer than LONG_LINE_CHARS is fed to it in windows of about SPLIT_WINDOW_CHARS, cut after a
# sentence end (else at a space), so splitting time grows linearly with the line.
LONG_LINE_CHARS = 10_000
SPLIT_WINDOW_CHARS = 2_000
NUL = "\x00"  # replaced by a space (offsets stay valid) and counted by validate_notes
FIRST_LISTED = 3  # offending rows named in a message

_HEADER = re.compile(r"^[A-Z][A-Z &/()'.,-]{1,80}:?$")  # "ASSESSMENT AND PLAN:", "MEMORY CLINIC VISIT"
_ENUMERATOR = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+")  # "1. ", "2) ", "- "
_WORD = re.compile(r"[A-Za-z]{2,}")
_WINDOW_CUT = re.compile(r"(?<=[a-z]{3}[.!?])\s+(?=[A-Z])")  # "...keys. She" (not "Dr. Smith", "b.i.d. Then")


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
    seen: dict[str, Path] = {}
    for path in paths:
        if path.stem in seen:
            raise FactoryError(f"two notes would get the same note id {path.stem!r}: {seen[path.stem]} and {path} "
                               "(a .txt note's id is its file name without .txt); rename one of them")
        seen[path.stem] = path
        yield Note(note_id=path.stem, text=_read_txt(path))


TABLE_BATCH_ROWS = 2048  # notes read at a time: a large table streams instead of loading whole


def starts_with_bom(path: Path) -> bool:
    """A UTF-8 byte order mark opens the file (Windows editors write one); polars' JSONL reader refuses it."""
    try:
        with Path(path).open("rb") as handle:
            return handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    except OSError:
        return False


def _as_text(value: object) -> str | None:
    """A JSON value as polars casts it to text (ids may be numbers; the line pass refuses a non-text note)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def _bom_jsonl_records(path: Path) -> Iterator[dict]:
    """The objects of a JSONL file read line by line in Python: the reader for files with a BOM."""
    with Path(path).open("rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            line = raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
            if line.strip():
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"line {line_no} is not a JSON object")
                yield record


def _bom_jsonl_batches(path: Path, columns: list[str], text_column: str) -> Iterator[pl.DataFrame]:
    batch: list[dict] = []
    try:
        for record in _bom_jsonl_records(path):
            batch.append({c: _as_text(record.get(c)) for c in columns})
            if len(batch) == TABLE_BATCH_ROWS:
                yield pl.DataFrame(batch, schema={c: pl.String for c in columns})
                batch = []
    except (ValueError, OSError) as exc:  # ValueError: also a JSON or UTF-8 error
        raise _read_error(path, "jsonl", exc, text_column) from None
    if batch:
        yield pl.DataFrame(batch, schema={c: pl.String for c in columns})


def _table_batches(path: Path, kind: str, columns: list[str], text_column: str = "text") -> Iterator[pl.DataFrame]:
    if kind == "jsonl" and starts_with_bom(path):
        yield from _bom_jsonl_batches(path, columns, text_column)
        return
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
        raise _read_error(path, kind, exc, text_column) from None


def _read_error(path: Path, kind: str, exc: BaseException, text_column: str | None = None) -> FactoryError:
    """A reader's error as one line, with the line number of the first problem where one can be found."""
    where = locate_table_problem(path, kind, text_column)
    if where:
        return FactoryError(f"cannot read {path} as {kind}: {where}")
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return FactoryError(f"cannot read {path} as {kind}: {first}")


def _decoded_lines(handle, problems: list[str]) -> Iterator[str]:
    """Lines of a binary file as text; stops at the first line that is not UTF-8 and says where."""
    for line_no, raw in enumerate(handle, 1):
        try:
            yield raw.decode("utf-8-sig" if line_no == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            problems.append(f"line {line_no} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1}); "
                            "convert the file to UTF-8 first")
            return


def locate_table_problem(path: Path, kind: str, text_column: str | None = None, delimiter: str = ",") -> str | None:
    """The first line of a JSONL or CSV file that cannot be read, as "line N: why" (None if none is found).

    Called after a reader failed, whose own message rarely says where; a plain Python pass over the file.
    """
    if kind not in ("jsonl", "csv"):
        return None
    problems: list[str] = []
    try:
        with Path(path).open("rb") as handle:
            lines = _decoded_lines(handle, problems)
            found = _jsonl_problem(lines, text_column) if kind == "jsonl" else _csv_problem(lines, delimiter)
            if found:
                return found
    except OSError:
        return None
    return problems[0] if problems else None


def _jsonl_problem(lines: Iterator[str], text_column: str | None) -> str | None:
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            return f"line {line_no} is not valid JSON ({exc.msg}, column {exc.colno})"
        if not isinstance(record, dict):
            return f"line {line_no} is not a JSON object"
        value = record.get(text_column) if text_column else None
        if value is not None and not isinstance(value, str):
            return f"line {line_no}: {text_column!r} is a {type(value).__name__}, not a string"
    return None


def _csv_problem(lines: Iterator[str], delimiter: str) -> str | None:
    """The first ragged record or CSV syntax error. A quote left open swallows the lines after it, so the
    reader only stumbles where that runs out (thousands of lines on): such a fault is reported at the line
    where the quote opened."""
    record_lines: list[str] = []  # the physical lines of the record being read

    def remembered() -> Iterator[str]:
        for line in lines:
            record_lines.append(line)
            yield line

    reader = csv.reader(remembered(), strict=True, delimiter=delimiter)
    start = 1  # line number of the record being read
    try:
        width = len(next(reader, []))
        start, record_lines[:] = reader.line_num + 1, []
        for record in reader:
            if len(record) != width:
                opened = _quote_opened_at(record_lines, start, delimiter)
                if opened is not None:
                    return (f"line {opened}: a quoted field opens there and runs on to line {reader.line_num}, where "
                            f"the record has {len(record)} fields and the header {width} (a quote left open?)")
                return f"line {reader.line_num} has {len(record)} fields, the header has {width}"
            start, record_lines[:] = reader.line_num + 1, []
    except csv.Error as exc:
        opened = _quote_opened_at(record_lines, start, delimiter)
        if opened is not None:
            return f"line {opened}: a quoted field opens there and is not closed where it should be ({exc})"
        return f"line {reader.line_num + 1}: {exc}"
    return None


def _quote_opened_at(record_lines: list[str], first_line: int, delimiter: str) -> int | None:
    """The line on which the quoted field that first runs across a line break opened (None: none does)."""
    inside, field_start, opened = False, True, first_line
    for offset, line in enumerate(record_lines):
        index = 0
        while index < len(line):
            char = line[index]
            if inside and char == '"':
                if line[index + 1 : index + 2] == '"':  # an escaped quote inside the field
                    index += 2
                    continue
                inside = False
            elif not inside and char == '"' and field_start:
                inside, opened = True, first_line + offset
            field_start = not inside and char == delimiter
            index += 1
        if inside:
            return opened
        field_start = True
    return None


def _table_columns(path: Path, kind: str) -> list[str]:
    if kind == "jsonl" and starts_with_bom(path):
        try:
            return list(next(_bom_jsonl_records(path), {}))
        except (ValueError, OSError) as exc:
            raise _read_error(path, kind, exc) from None
    try:
        if kind == "csv":
            return pl.read_csv(path, n_rows=0, infer_schema=False).columns
        if kind == "parquet":
            return list(pl.read_parquet_schema(path))
        return pl.read_ndjson(path, n_rows=1).columns
    except pl.exceptions.NoDataError:
        raise FactoryError(f"{path} is empty") from None
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _read_error(path, kind, exc) from None


def _text_dtype(path: Path, kind: str, column: str) -> pl.DataType | None:
    if kind == "jsonl" and starts_with_bom(path):
        return pl.String  # read as text line by line; validate_notes refuses a line whose note is not text
    try:
        if kind == "parquet":
            return pl.read_parquet_schema(path).get(column)
        if kind == "jsonl":
            return pl.scan_ndjson(path).collect_schema().get(column)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise _read_error(path, kind, exc, column) from None
    return pl.String  # CSV is read as text


def _table_notes(path: Path, kind: str, text_column: str, id_column: str | None) -> Iterator[Note]:
    available = _table_columns(path, kind)
    for wanted, flag in ((text_column, "--text-column"), (id_column, "--id-column")):
        if wanted is not None and wanted not in available:
            raise FactoryError(f"{path} has no column {wanted!r} ({flag}); columns: {', '.join(available)}")
    dtype = _text_dtype(path, kind, text_column)
    if dtype is not None and (dtype.is_nested() or dtype in (pl.Binary, pl.Object)):
        raise FactoryError(f"{path}: column {text_column!r} holds {dtype} values, not text; "
                           "choose the column with the note text (--text-column)")
    columns = [text_column] + ([id_column] if id_column and id_column != text_column else [])
    seen: dict[str, int] = {}  # note id -> row number, to refuse two rows with one id
    index = 0
    for frame in _table_batches(path, kind, columns, text_column):
        ids = frame.get_column(id_column).cast(pl.String) if id_column else None
        try:
            texts = frame.get_column(text_column).cast(pl.String)
        except pl.exceptions.PolarsError as exc:
            raise _read_error(path, kind, exc, text_column) from None
        for row, text in enumerate(texts):
            row_no = index + 1
            if ids is not None:
                if ids[row] is None:
                    raise FactoryError(f"{path}, row {row_no}: no note id in column {id_column!r} (--id-column)")
                note_id = str(ids[row])
                if note_id in seen:
                    raise FactoryError(f"{path}: rows {seen[note_id]} and {row_no} have the same note id {note_id!r} "
                                       f"(column {id_column!r}); note ids must be unique")
                seen[note_id] = row_no
            else:
                note_id = f"{path.stem}:{index}"
            if text is None and kind == "jsonl":
                raise FactoryError(f"{path}, row {row_no} (note {note_id}): no {text_column!r} field "
                                   "(--text-column); every line needs the note text")
            yield Note(note_id=note_id, text=text or "")
            index += 1
    if index == 0:
        raise FactoryError(f"{path} has no rows")


def iter_notes(path: str | Path, text_column: str = "text", id_column: str | None = None) -> Iterator[Note]:
    """Every note once. NUL characters become spaces (offsets stay valid); validate_notes counts them."""
    return (Note(n.note_id, n.text.replace(NUL, " ")) if NUL in n.text else n
            for n in _raw_notes(path, text_column, id_column))


def _raw_notes(path: str | Path, text_column: str = "text", id_column: str | None = None) -> Iterator[Note]:
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


@dataclass
class NotesCheck:
    """What a full pass over the notes found: counts, and the decisions taken on the user's behalf."""

    path: Path
    notes: int = 0
    chars: int = 0
    empty_notes: list[str] = field(default_factory=list)  # ids of notes without text
    nul_notes: list[str] = field(default_factory=list)  # ids of notes with NUL characters
    nul_chars: int = 0

    def decisions(self) -> list[str]:
        """One line per silent decision, naming the first notes it touched."""
        lines = []
        if self.empty_notes:
            lines.append(f"{len(self.empty_notes)} of {self.notes} note(s) have no text and give no sentences "
                         f"(first: {_first(self.empty_notes)})")
        if self.nul_chars:
            lines.append(f"{self.nul_chars} NUL character(s) in {len(self.nul_notes)} note(s) were read as spaces "
                         f"(first: {_first(self.nul_notes)})")
        return lines


def _first(ids: list[str]) -> str:
    return ", ".join(ids[:FIRST_LISTED]) + (", ..." if len(ids) > FIRST_LISTED else "")


def validate_notes(path: str | Path, text_column: str = "text", id_column: str | None = None,
                   on_note: Callable[[Note], None] | None = None) -> NotesCheck:
    """Read every note once without splitting: a broken file (with the line number), a non-text column,
    duplicate note ids, ... fail here, before an engine starts, instead of after thousands of notes."""
    path = Path(path)
    kind = TABLE_SUFFIXES.get(path.suffix.lower()) if path.is_file() else None
    if kind in ("jsonl", "csv"):  # a line-by-line pass: the table reader neither says where nor sees every fault
        problem = locate_table_problem(path, kind, text_column)
        if problem:
            raise FactoryError(f"cannot read {path} as {kind}: {problem}")
    check = NotesCheck(path)
    for note in _raw_notes(path, text_column, id_column):
        check.notes += 1
        check.chars += len(note.text)
        if not note.text.strip():
            check.empty_notes.append(note.note_id)
        nuls = note.text.count(NUL)
        if nuls:
            check.nul_chars += nuls
            check.nul_notes.append(note.note_id)
        if on_note is not None:
            on_note(note)
    return check


@lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def _is_noise(segment: str) -> bool:
    """Section headers and fragments without words are not sentences worth labelling."""
    return bool(_HEADER.match(segment)) or not _WORD.search(segment)


def _cut_long(text: str, start: int) -> Iterator[tuple[int, str]]:
    """Pieces of at most MAX_SENTENCE_CHARS, cut at the last space (index arithmetic: linear in the text)."""
    begin, end = 0, len(text)
    while end - begin > MAX_SENTENCE_CHARS:
        cut = text.rfind(" ", begin, begin + MAX_SENTENCE_CHARS)
        cut = cut if cut > begin else begin + MAX_SENTENCE_CHARS
        yield start + begin, text[begin:cut]
        begin = cut
        while begin < end and text[begin].isspace():
            begin += 1
    if begin < end:
        yield start + begin, text[begin:end]


def _windows(line: str) -> Iterator[tuple[int, str]]:
    """A long line in pieces of about SPLIT_WINDOW_CHARS, cut after a sentence end where there is one."""
    if len(line) <= LONG_LINE_CHARS:
        yield 0, line
        return
    begin, end = 0, len(line)
    while end - begin > SPLIT_WINDOW_CHARS:
        window = line[begin : begin + SPLIT_WINDOW_CHARS]
        cut = None
        for match in _WINDOW_CUT.finditer(window, SPLIT_WINDOW_CHARS // 2):
            cut = match.start()
        if cut is None:
            space = window.rfind(" ", SPLIT_WINDOW_CHARS // 2)
            cut = space if space > 0 else SPLIT_WINDOW_CHARS
        yield begin, window[:cut]
        begin += cut
        while begin < end and line[begin].isspace():
            begin += 1
    if begin < end:
        yield begin, line[begin:end]


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
    for line_start, whole_line in _line_spans(note.text):
        for window_start, line in _windows(whole_line):
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
                    begin = line_start + window_start + start_in_line
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
