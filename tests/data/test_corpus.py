import polars as pl
import pytest

from factory.data.corpus import MAX_SENTENCE_CHARS, Note, iter_notes, iter_sentences, split_sentences
from factory.core.errors import FactoryError


def test_clinical_abbreviations_headers_and_lists(tmp_path):
    text = (
        "MEMORY CLINIC VISIT\nHPI:\nPt is a 67 y.o. male on metformin 500 mg b.i.d. and lisinopril. "
        "Crestor 20 mg p.o. daily.\n\nPLAN:\n1.  Start donepezil 5 mg nightly.\n2. Recheck B12.\n"
    )
    sentences = list(split_sentences(Note("n1", text)))
    assert [s.text for s in sentences] == [
        "Pt is a 67 y.o. male on metformin 500 mg b.i.d. and lisinopril.",
        "Crestor 20 mg p.o. daily.",
        "Start donepezil 5 mg nightly.",
        "Recheck B12.",
    ]
    assert [s.sentence_index for s in sentences] == [0, 1, 2, 3]
    for s in sentences:  # offsets point back into the note
        assert text[s.char_start : s.char_end] == s.text


def test_duplicates_and_empties_are_dropped_across_notes(notes_dir):
    texts = [s.text for s in iter_sentences(iter_notes(notes_dir))]
    assert texts.count("She keeps forgetting her keys.") == 1
    assert "Lungs are clear." in texts and "BP 132/84." in texts
    assert all(t.strip() for t in texts)


def test_long_runs_are_cut_at_spaces():
    text = "word " * 600
    pieces = list(split_sentences(Note("long", text)))
    assert len(pieces) >= 3
    assert all(len(p.text) <= MAX_SENTENCE_CHARS for p in pieces)
    assert all(text[p.char_start : p.char_end] == p.text for p in pieces)


def test_tables_with_embedded_newlines_and_quotes(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('id,body\nA7,"She said ""I forget"".\nMMSE 22/30."\nB2,Lungs clear.\n', encoding="utf-8")
    notes = list(iter_notes(path, text_column="body", id_column="id"))
    assert [n.note_id for n in notes] == ["A7", "B2"]
    assert [s.text for s in split_sentences(notes[0])] == ['She said "I forget".', "MMSE 22/30."]
    parquet = tmp_path / "notes.parquet"
    pl.DataFrame({"text": ["Memory is worse."]}).write_parquet(parquet)
    assert [n.note_id for n in iter_notes(parquet)] == ["notes:0"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing", "notes not found"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "no .txt notes in folder"),
        (lambda p: (p / "x.docx").write_text("hi") and p / "x.docx", "unsupported notes file"),
        (lambda p: (p / "bad.txt").write_bytes(b"ok \xff\xfe text") and p / "bad.txt", "is not UTF-8 text"),
        (lambda p: (p / "empty.csv").write_text("") is not None and p / "empty.csv", "is empty"),
    ],
)
def test_bad_notes_inputs(tmp_path, setup, message):
    with pytest.raises(FactoryError, match=message):
        list(iter_notes(setup(tmp_path)))


def test_wrong_text_column_names_the_available_columns(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"note": "Memory is worse."}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match=r"no column 'text' \(--text-column\); columns: note"):
        list(iter_notes(path))


def test_a_table_is_read_in_batches_with_stable_note_ids(tmp_path, monkeypatch):
    from factory.data import corpus

    monkeypatch.setattr(corpus, "TABLE_BATCH_ROWS", 3)
    path = tmp_path / "notes.parquet"
    pl.DataFrame({"text": [f"Note {i} says she forgets." for i in range(7)]}).write_parquet(path)
    notes = list(iter_notes(path))
    assert [n.note_id for n in notes] == [f"notes:{i}" for i in range(7)]
    assert notes[6].text == "Note 6 says she forgets."
