"""The PHI recall measurement itself (tests/quality/test_phi_recall.py holds the scanner to its figures):
what counts as caught, per-kind and sentence recall, false positives, the tables and the saved figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from factory.quality.phi import PhiHit
from factory.quality.phi_eval import (PhiEvaluation, _covered, evaluate, load_planted, main, recall_document,
                                      recall_markdown, recall_record)


class Scripted:
    """A scanner that finds exactly the given substrings."""

    method = "scripted"

    def __init__(self, finds: list[str]):
        self.finds = finds

    def scan(self, sentences):
        return [[PhiHit("name", s.index(f), s.index(f) + len(f), f) for f in self.finds if f in s] for s in sentences]


def _planted(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


RECORDS = [
    {"id": "1", "text": "Rose Hill lives at Calle 8 #214.", "batch": "a",
     "identifiers": [{"text": "Rose Hill", "kind": "NAME"}, {"text": "Calle 8 #214", "kind": "ADDRESS"}]},
    {"id": "2", "text": "Seen on 02/03/2023 with Tom.", "batch": "b",
     "identifiers": [{"text": "02/03/2023", "kind": "DATE"}, {"text": "Tom", "kind": "NAME"}]},
    {"id": "3", "text": "Donepezil 5 mg nightly.", "identifiers": []},
    {"id": "4", "text": "Grace period ends Friday.", "identifiers": []},
]


def test_an_identifier_is_caught_only_when_its_digits_and_half_its_letters_are_covered():
    text = "Lives at Calle 8 #214 now."
    start, end = text.index("Calle"), text.index(" now")

    def hit(span: str) -> PhiHit:
        return PhiHit("x", text.index(span), text.index(span) + len(span), span)

    assert not _covered(text, [hit("Calle")], start, end)  # the house number would survive a redaction
    assert _covered(text, [hit("Calle 8 #214")], start, end)
    assert _covered(text, [hit("Calle 8"), hit("214")], start, end)  # several findings add up
    assert not _covered(text, [], start, end)
    name = "Mrs. Rose Hill came."
    assert _covered(name, [PhiHit("x", 5, 14, "Rose Hill")], 0, 14)  # "Mrs." left over: still caught


def test_recall_per_kind_sentence_recall_and_false_positives(tmp_path):
    path = _planted(tmp_path / "set.jsonl", RECORDS)
    result = evaluate(path, Scripted(["Rose Hill", "Calle", "Grace"]))
    assert (result.identifier_sentences, result.quarantined_sentences, result.clean_sentences) == (2, 1, 2)
    assert {k: (v.caught, v.total) for k, v in result.per_kind.items()} == {"NAME": (1, 2), "ADDRESS": (0, 1), "DATE": (0, 1)}
    assert (result.caught, result.identifiers, result.recall, result.sentence_recall) == (1, 4, 0.25, 0.5)
    assert result.false_positives == [("Grace period ends Friday.", ["name: Grace"])]
    assert result.false_positive_rate == 0.5
    assert [m[:2] for m in result.misses] == [("ADDRESS", "Calle 8 #214"), ("DATE", "02/03/2023"), ("NAME", "Tom")]
    report = result.report(misses=True)
    assert "| NAME | 1 / 2 | 50% |" in report and "| **all identifiers** | **1 / 4** | **25.0%** |" in report
    assert "MISSED DATE: '02/03/2023'" in report and "FALSE POSITIVE: 'Grace period ends Friday.'" in report
    assert "MISSED" not in result.report()


def test_a_batch_is_measured_alone_and_an_identifier_not_in_its_sentence_is_refused(tmp_path):
    path = _planted(tmp_path / "set.jsonl", RECORDS)
    assert [r["id"] for r in load_planted(path, batch="b")] == ["2"]
    assert evaluate(path, Scripted([]), batch="a").identifiers == 2
    bad = _planted(tmp_path / "bad.jsonl", [{"text": "Seen today.", "identifiers": [{"text": "Tom", "kind": "NAME"}]}])
    with pytest.raises(ValueError, match=r"bad.jsonl:1: identifier 'Tom' is not in the sentence"):
        load_planted(bad)


def test_an_empty_evaluation_reads_as_perfect_not_as_a_division_by_zero():
    empty = PhiEvaluation(path="x", method="m")
    assert (empty.recall, empty.sentence_recall, empty.false_positive_rate) == (1.0, 1.0, 0.0)


def test_the_record_keeps_what_the_data_card_needs(tmp_path):
    result = evaluate(_planted(tmp_path / "phi_planted.jsonl", RECORDS), Scripted(["Rose Hill"]))
    record = recall_record(result)
    assert record["set"] == "phi_planted" and record["note"] == "the set the rules were developed on"
    assert record["per_kind"]["NAME"] == {"caught": 1, "planted": 2} and list(record["per_kind"]) == sorted(record["per_kind"])
    assert (record["clean_sentences"], record["clean_flagged"]) == (2, 0)
    document = recall_document([result])
    assert document["method"] == "scripted" and document["measured_by"].endswith("--save docs/phi_recall.json")


def test_a_kind_planted_in_one_set_only_gets_a_row():
    """New kinds (set d brought BIOMETRIC, PHOTO, UNIQUE_ID) need no list to be edited: the table takes its
    rows from the sets, and a set without the kind shows a dash."""
    document = {"sets": [
        {"set": "a", "note": "", "per_kind": {"NAME": {"caught": 2, "planted": 2}}, "caught": 2, "identifiers": 2,
         "clean_sentences": 1, "clean_flagged": 0},
        {"set": "b", "note": "", "per_kind": {"NAME": {"caught": 1, "planted": 1}, "PHOTO": {"caught": 1, "planted": 2}},
         "caught": 2, "identifiers": 3, "clean_sentences": 1, "clean_flagged": 0}]}
    lines = recall_markdown(document)
    assert "| PHOTO | — | 1 / 2 |" in lines and "| NAME | 2 / 2 | 1 / 1 |" in lines


def test_the_command_prints_each_set_and_saves_the_figures(tmp_path, capsys):
    first = _planted(tmp_path / "one.jsonl", RECORDS)
    second = _planted(tmp_path / "two.jsonl", RECORDS[2:])
    assert main([str(first), str(second), "--rules-only", "--table", "--save", str(tmp_path / "recall.json")]) == 0
    out = capsys.readouterr().out
    assert f"{first}: 2 sentences with 4 identifiers, 2 clean look-alikes" in out and f"{second}: 0 sentences" in out
    saved = json.loads((tmp_path / "recall.json").read_text())
    assert [s["set"] for s in saved["sets"]] == ["one", "two"]
    assert all(line in out for line in recall_markdown(saved) if line.startswith("|"))  # --table prints the same
