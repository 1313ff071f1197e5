"""Label sentences with a saved classifier and write contract-style Parquet plus one score per output."""

from __future__ import annotations

from pathlib import Path


import numpy as np
import polars as pl

from factory.data.corpus import Sentence, iter_notes, split_sentences
from factory.data.rows import CORE_SCHEMA, text_row_id
from factory.data.output_folder import Writer, check_output_folder, claim_output_folder, unique_default
from factory.data.store import atomic_write_parquet, utc_now
from factory.core.errors import FactoryError
from factory.data.gold import read_records
from factory.core.paths import CACHE_DIR, DATA_DIR
from factory.data.taxonomy import NONE_ID
from factory.trainer.classifiers import load_model
from factory.trainer.metrics import decide

DEFAULT_PREDICTIONS_DIR = DATA_DIR / "predictions"
PREDICTED_SOURCE = "predicted"
PREDICTIONS_SHARD = "part-00000.parquet"
PREDICT_MARKER = "predict.json"  # names the command that wrote the folder; only such a folder is overwritten


def default_out_dir() -> Path:
    return unique_default(DEFAULT_PREDICTIONS_DIR)


def read_input(path: Path, text_column: str = "text") -> tuple[list[str], list[str], list[int]]:
    """Sentences with their file and line/row number (1-based).

    A .txt file (or a folder of them) holds one sentence per non-empty line; CSV, Parquet and JSONL use
    --text-column.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.txt") if p.is_file())  # a named pipe there would never end
        if not files:
            raise FactoryError(f"{path} has no .txt files")
    elif path.is_file():
        files = [path]
    else:
        raise FactoryError(f"input not found: {path}")
    texts, origins, lines = [], [], []
    for file in files:
        if file.suffix.lower() == ".txt":
            try:
                content = file.read_text(encoding="utf-8-sig")  # a BOM, as everywhere else, is not text
            except (OSError, UnicodeDecodeError) as exc:
                raise FactoryError(f"cannot read {file}: {exc}") from None
            numbered = enumerate(content.splitlines(), 1)
        else:
            columns, records = read_records(file)
            if text_column not in columns:
                raise FactoryError(f"{file}: no text column {text_column!r} (use --text-column); columns found: {', '.join(columns)}")
            numbered = ((i, r.get(text_column)) for i, r in enumerate(records, 1))
        for number, text in numbered:
            if text is not None and not isinstance(text, (str, int, float)):
                raise FactoryError(f"{file}, row {number}: {text_column!r} is a {type(text).__name__}, not a string")
            text = " ".join(str(text).split()) if text is not None else ""
            if "\x00" in text:
                raise FactoryError(f"{file}, line/row {number}: the sentence contains a NUL character; remove it first")
            if text:
                texts.append(text)
                origins.append(str(file))
                lines.append(number)
    if not texts:
        raise FactoryError(f"no sentences found in {path}")
    return texts, origins, lines


def read_notes(path: Path, text_column: str = "text", id_column: str | None = None) -> list[Sentence]:
    """Every sentence of every note, split as `label --notes` splits them (offsets kept; a sentence that
    recurs in another note is kept there too, since each note gets its own predictions)."""
    sentences = [s for note in iter_notes(path, text_column, id_column) for s in split_sentences(note)]
    if not sentences:
        raise FactoryError(f"no sentences found in {path}")
    return sentences


def notes_columns(sentences: list[Sentence]) -> dict[str, pl.Series]:
    return {
        "note_id": pl.Series([s.note_id for s in sentences], dtype=pl.Utf8),
        "sentence_index": pl.Series([s.sentence_index for s in sentences], dtype=pl.Int32),
        "char_start": pl.Series([s.char_start for s in sentences], dtype=pl.Int32),
        "char_end": pl.Series([s.char_end for s in sentences], dtype=pl.Int32),
    }


def lines_columns(origins: list[str], lines: list[int]) -> dict[str, pl.Series]:
    return {"input_path": pl.Series(origins, dtype=pl.Utf8), "input_line": pl.Series(lines, dtype=pl.Int32)}


def predictions_frame(texts: list[str], where: dict[str, pl.Series], probs: np.ndarray, outputs: list[str],
                      threshold: float | np.ndarray, model_dir: Path, max_labels: int | None = None) -> pl.DataFrame:
    """Contract columns, one score per output, then `where` each sentence came from. `threshold` is one number
    or the model's per-output thresholds (chosen on CV folds of gold train, saved in meta.json), on the scale
    of `probs` (calibrated probabilities when the model has calibrators); `max_labels` caps the categories
    per sentence (metrics.decide)."""
    categories = outputs[:-1]  # the last output is the binary any-category score
    chosen = decide(probs, threshold, max_labels)[:, :-1]
    labels = [[c for c, on in zip(categories, row) if on] or [NONE_ID] for row in chosen]
    columns = {
        "row_id": pl.Series([text_row_id(t) for t in texts], dtype=CORE_SCHEMA["row_id"]),
        "source": pl.Series([PREDICTED_SOURCE] * len(texts), dtype=CORE_SCHEMA["source"]),
        "text": pl.Series(texts, dtype=CORE_SCHEMA["text"]),
        "labels": pl.Series(labels, dtype=CORE_SCHEMA["labels"]),
    }
    for j, name in enumerate(outputs):
        columns[f"score_{name}"] = pl.Series(probs[:, j].astype(np.float32))
    columns.update(where)
    columns["model_dir"] = pl.Series([str(model_dir)] * len(texts), dtype=pl.Utf8)
    return pl.DataFrame(columns)


def _is_legacy_output(out_dir: Path) -> bool:
    """Written before the marker existed: only the predictions shard, with its model_dir column."""
    if [p.name for p in out_dir.iterdir()] != [PREDICTIONS_SHARD]:
        return False
    try:
        return "model_dir" in pl.read_parquet_schema(out_dir / PREDICTIONS_SHARD)
    except (pl.exceptions.PolarsError, OSError):
        return False


# Predictions are read by other tools: an earlier output is replaced only when asked (--replace).
PREDICT_WRITER = Writer("predict", marker=PREDICT_MARKER, needs_replace=True,
                        own_files=frozenset({PREDICTIONS_SHARD}), legacy=_is_legacy_output)


def check_out_dir(out_dir: Path, overwrite: bool = False) -> None:
    """`out_dir` may be new or empty; an earlier predict output only with `overwrite`; anything else never."""
    check_output_folder(Path(out_dir), PREDICT_WRITER, overwrite)


def predict(model_dir: Path, input_path: Path, out_dir: Path, text_column: str = "text",
            cache_dir: Path | None = CACHE_DIR, notes: bool = False, id_column: str | None = None,
            overwrite: bool = False) -> tuple[Path, pl.DataFrame]:
    """Sentences one per line / row (`notes=False`), or notes split into sentences (`notes=True`)."""
    check_out_dir(out_dir, overwrite)  # before the model loads: a refused --out costs nothing
    model = load_model(model_dir, cache_dir)
    if notes:
        sentences = read_notes(input_path, text_column, id_column)
        texts, where = [s.text for s in sentences], notes_columns(sentences)
    else:
        texts, origins, lines = read_input(input_path, text_column)
        where = lines_columns(origins, lines)
    probs = model.predict_proba(texts)
    frame = predictions_frame(texts, where, probs, model.outputs, model.threshold, Path(model_dir), model.max_labels)
    with claim_output_folder(Path(out_dir), PREDICT_WRITER, overwrite) as folder:
        atomic_write_parquet(frame, folder.build / PREDICTIONS_SHARD)
        folder.marker.update(model=str(model_dir), input=str(input_path), notes=notes, rows=frame.height,
                             created_at=utc_now().isoformat())
    return Path(out_dir) / PREDICTIONS_SHARD, frame
