"""data/demo/negatives.jsonl: ordinary clinical sentences from many specialties, all labelled "none"."""

import json
import re
from pathlib import Path

from factory.data.gold import read_gold_any
from factory.data.rows import text_row_id

ROOT = Path(__file__).resolve().parents[2]
NEGATIVES = ROOT / "data" / "demo" / "negatives.jsonl"
GOLD = ROOT / "data" / "demo" / "gold.jsonl"

# Words that would put a sentence in (or next to) one of the nine AD categories.
AD_TERMS = re.compile(
    r"memor|cogni|dement|confus|alzheim|forget|disorient|\bmci\b|mmse|moca|slums|neuropsych|amyloid|"
    r"hippocamp|atrophy|donepezil|memantine|rivastigmine|galantamine|lecanemab|wander|halluc|delusion|"
    r"agitat|apath|depress|anxi|irritab|personality|incontinen|swallow|dysphag|\bgait\b|\bfalls?\b|"
    r"weight loss|caregiver|supervis|remind|getting lost",
    re.IGNORECASE,
)


def _records() -> list[dict]:
    return [json.loads(line) for line in NEGATIVES.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_same_format_as_the_gold_file():
    records = _records()
    gold_keys = set(json.loads(GOLD.read_text(encoding="utf-8").splitlines()[0]))
    assert all(set(r) == gold_keys == {"id", "text", "labels"} for r in records)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)) and all(re.fullmatch(r"n\d{4}", i) for i in ids)
    assert all(r["labels"] == ["none"] for r in records)
    assert all(isinstance(r["text"], str) and r["text"] == " ".join(r["text"].split()) for r in records)


def test_reads_with_the_gold_reader_as_200_or_more_distinct_none_rows(taxonomy):
    rows = read_gold_any(NEGATIVES, taxonomy)
    assert len(rows) == len(_records()) >= 200  # nothing dropped as empty or duplicate
    assert all(labels == ["none"] for labels in rows.labels)
    assert set(rows.sources) == {"gold"}


def test_no_sentence_is_in_the_demo_gold_set(taxonomy):
    gold_ids = set(read_gold_any(GOLD, taxonomy).row_ids)
    negatives = read_gold_any(NEGATIVES, taxonomy)
    assert [t for r, t in zip(negatives.row_ids, negatives.texts) if r in gold_ids] == []
    assert all(r == text_row_id(t) for r, t in zip(negatives.row_ids, negatives.texts))


def test_no_sentence_mentions_an_ad_category(taxonomy):
    examples = {text_row_id(e) for c in taxonomy.categories for e in c.examples}
    texts = [r["text"] for r in _records()]
    assert [t for t in texts if AD_TERMS.search(t)] == []
    assert [t for t in texts if text_row_id(t) in examples] == []


def test_ood_notes_are_held_out_and_free_of_ad_content(taxonomy):
    notes = sorted((ROOT / "tests" / "fixtures" / "ood_notes").glob("note_*.txt"))
    assert len(notes) == 20
    lines = [line.strip() for note in notes for line in note.read_text(encoding="utf-8").splitlines() if line.strip()]
    used = {text_row_id(t) for t in read_gold_any(NEGATIVES, taxonomy).texts}
    used |= set(read_gold_any(GOLD, taxonomy).row_ids)
    assert [line for line in lines if text_row_id(re.sub(r"^\d+\.\s*", "", line)) in used] == []
    assert [line for line in lines if AD_TERMS.search(line)] == []
