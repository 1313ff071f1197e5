"""Hostile notes inputs (issue 13): each used to crash, hang, fail late or decide silently."""

from __future__ import annotations

import json

import polars as pl
import pytest

from factory.core.errors import FactoryError
from factory.data import corpus
from factory.data.corpus import LONG_LINE_CHARS, SPLIT_WINDOW_CHARS, Note, iter_notes, split_sentences, validate_notes

SENTENCE = "Patient number {} reports forgetting appointments and needs reminders from her son. "


def test_a_list_typed_text_column_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.parquet"
    pl.DataFrame({"text": [["She forgets.", "Lungs clear."]]}).write_parquet(path)
    with pytest.raises(FactoryError, match=r"column 'text' holds List\(String\) values, not text"):
        validate_notes(path)
    with pytest.raises(FactoryError, match="not text"):
        list(iter_notes(path))


def test_duplicate_note_ids_in_a_table_are_refused_with_both_rows(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("id,text\nA1,She forgets.\nB2,Lungs clear.\nA1,MoCA 20/30.\n", encoding="utf-8")
    with pytest.raises(FactoryError, match=r"rows 1 and 3 have the same note id 'A1'"):
        validate_notes(path, id_column="id")


def test_a_missing_note_id_is_refused(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"id": "a", "text": "She forgets."}\n{"text": "Lungs clear."}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match=r"row 2: no note id in column 'id'"):
        validate_notes(path, id_column="id")


def test_two_note_files_with_one_name_in_subfolders_are_refused(tmp_path):
    for sub in ("visit1", "visit2"):
        (tmp_path / "notes" / sub).mkdir(parents=True)
        (tmp_path / "notes" / sub / "note.txt").write_text(f"She forgets ({sub}).\n", encoding="utf-8")
    with pytest.raises(FactoryError, match=r"same note id 'note'.*visit1/note.txt and .*visit2/note.txt"):
        validate_notes(tmp_path / "notes")


def test_jsonl_lines_without_the_text_field_are_refused_with_the_row(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": "She forgets."}\n{"body": "Lungs clear."}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match=r"row 2 \(note notes:1\): no 'text' field"):
        validate_notes(path)


def test_object_valued_text_is_refused_not_stringified(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": {"hpi": "She forgets."}}\n', encoding="utf-8")
    with pytest.raises(FactoryError, match=r"line 1: 'text' is a dict, not a string"):
        validate_notes(path)
    mixed = tmp_path / "mixed.jsonl"  # the type changes after the lines a reader infers its schema from
    mixed.write_text("".join(json.dumps({"text": f"Note {i}."}) + "\n" for i in range(200))
                     + json.dumps({"text": {"hpi": "She forgets."}}) + "\n", encoding="utf-8")
    with pytest.raises(FactoryError, match=r"line 201: 'text' is a dict, not a string"):
        validate_notes(mixed)


def test_nul_characters_become_spaces_and_are_counted(tmp_path):
    path = tmp_path / "notes.jsonl"
    path.write_text(json.dumps({"text": "She forgets\u0000 her keys. Lungs clear."}) + "\n"
                    + json.dumps({"text": "   "}) + "\n", encoding="utf-8")
    check = validate_notes(path)
    assert (check.notes, check.nul_chars, check.nul_notes, check.empty_notes) == (2, 1, ["notes:0"], ["notes:1"])
    assert any("1 NUL character(s) in 1 note(s) were read as spaces (first: notes:0)" in d for d in check.decisions())
    assert any("have no text" in d and "notes:1" in d for d in check.decisions())
    note = next(iter_notes(path))
    sentences = list(split_sentences(note))
    assert all("\x00" not in s.text for s in sentences)
    assert sentences[0].text == "She forgets  her keys."
    assert all(note.text[s.char_start:s.char_end] == s.text for s in sentences)


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_file_broken_at_row_50001_fails_in_the_cheap_pass_with_its_line(tmp_path, kind, monkeypatch):
    monkeypatch.setattr(corpus, "_segmenter", _no_splitting)
    path = tmp_path / f"notes.{kind}"
    good = [f"Note {i}: she forgets her keys." for i in range(50_000)]
    if kind == "jsonl":
        path.write_text("".join(json.dumps({"text": t}) + "\n" for t in good) + '{"text": "broken\n', encoding="utf-8")
        where = "line 50001 is not valid JSON"
    else:
        path.write_text("id,text\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(good)) + "50000,a,b\n",
                        encoding="utf-8")
        where = "line 50002 has 3 fields, the header has 2"
    with pytest.raises(FactoryError, match=where):
        validate_notes(path)  # the cheap pass: it never splits a sentence (the monkeypatched splitter would fail)
    if kind == "jsonl":
        with pytest.raises(FactoryError, match=where):  # the streaming reader says where too
            for _ in iter_notes(path):
                pass


@pytest.mark.parametrize("kind", ["jsonl", "csv"])
def test_a_non_utf8_table_names_the_line(tmp_path, kind):
    path = tmp_path / f"notes.{kind}"
    head = b'{"text": "ok"}\n' if kind == "jsonl" else b"text\n"
    bad = b'{"text": "caf\xe9"}\n' if kind == "jsonl" else b"caf\xe9\n"
    path.write_bytes(head + bad)
    with pytest.raises(FactoryError, match=r"line 2 is not UTF-8 \(byte 0xe9"):
        validate_notes(path)


class CountingSegmenter:
    """pysbd's segmenter as split_sentences calls it, with the length of every text it is given recorded:
    pysbd's work on one call grows faster than the call's text, so the splitter's work is linear in the
    note exactly when every call is bounded and the calls together read each character about once."""

    def __init__(self, real):
        self.real = real
        self.calls: list[int] = []

    def segment(self, text: str):
        self.calls.append(len(text))
        return self.real.segment(text)


@pytest.fixture
def counted(monkeypatch) -> CountingSegmenter:
    counter = CountingSegmenter(corpus._segmenter())
    monkeypatch.setattr(corpus, "_segmenter", lambda: counter)
    return counter


def _no_splitting():
    raise AssertionError("sentence splitting started")


def _one_line_note(chars: int) -> str:
    """One line of distinct sentences, at most `chars` characters long."""
    sentences, length = [], 0
    while length + len(SENTENCE.format(len(sentences))) <= chars:
        sentences.append(SENTENCE.format(len(sentences)))
        length += len(sentences[-1])
    return "".join(sentences)


def _split_work(counted: CountingSegmenter, text: str) -> tuple[list[int], list]:
    counted.calls.clear()
    sentences = list(split_sentences(Note("one-line", text)))
    return list(counted.calls), sentences


def test_a_single_line_note_splits_with_work_linear_in_its_length(counted):
    """A 20 MB one-line note gave no output in 300 s: pysbd's work grows faster than the text it is given, so
    a long line goes to it in bounded windows. Timings are bin/bench's (`corpus split`); this counts the work."""
    small_text, large_text = _one_line_note(10 * LONG_LINE_CHARS), _one_line_note(20 * LONG_LINE_CHARS)
    small, small_sentences = _split_work(counted, small_text)
    large, large_sentences = _split_work(counted, large_text)
    for calls, text, sentences in ((small, small_text, small_sentences), (large, large_text, large_sentences)):
        assert len(sentences) == text.count(". ")  # every sentence found, none glued at a window edge
        assert all(text[s.char_start:s.char_end] == s.text for s in sentences)
        assert max(calls) <= SPLIT_WINDOW_CHARS  # each pysbd call is bounded, whatever the line's length
        assert len(text) - len(calls) <= sum(calls) <= len(text)  # each character read once (spaces at cuts skipped)
    # twice the line: twice the calls of the same bounded size (linear), not more
    assert 2 * len(small) - 2 <= len(large) <= 2 * len(small) + 2


def test_a_short_line_goes_to_the_splitter_whole(counted):
    text = _one_line_note(LONG_LINE_CHARS)
    calls, sentences = _split_work(counted, text)
    assert calls == [len(text.rstrip())] and len(sentences) == text.count(". ")


def test_a_long_line_without_spaces_or_punctuation_is_cut_with_linear_work(counted):
    text = "x" * (30 * SPLIT_WINDOW_CHARS + 123)
    calls, pieces = _split_work(counted, text)
    assert calls == [SPLIT_WINDOW_CHARS] * 30 + [123]  # fixed windows, each character once
    assert sum(len(p.text) for p in pieces) == len(text)
    assert all(text[p.char_start:p.char_end] == p.text for p in pieces)
