"""Small, separable toy data shared by the trainer tests (no demo data needed)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# Keep the `datasets` Arrow cache of test runs out of the user's home cache.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="trainer-tests-hf-")

from factory.datasets_io import core_frame, text_row_id, write_parquet_atomic  # noqa: E402
from factory.taxonomy import load_taxonomy  # noqa: E402

# One distinctive phrase per category: a linear model separates these easily.
KEYWORDS = {
    "cognitive_impairment": "keeps forgetting recent conversations and gets confused",
    "notice_by_others": "his daughter noticed and is worried about the changes",
    "requiring_assistance": "needs help with bathing dressing and paying the bills",
    "physiological_changes": "had several falls with a shuffling gait and weight loss",
    "neuropsychiatric_symptoms": "is agitated at night and sees people who are not there",
    "cognitive_assessment": "scored 18 of 30 on the MoCA screening test",
    "diagnostic_tests": "MRI of the brain shows hippocampal atrophy on imaging",
    "dementia_diagnosis": "was diagnosed with Alzheimer dementia of moderate stage",
    "treatment_and_care": "was started on donepezil and referred to memory care",
}
NONE_PHRASES = [
    "lungs are clear to auscultation bilaterally",
    "blood pressure is well controlled on lisinopril",
    "follow up in clinic in six weeks",
    "skin exam shows no rash",
    "abdomen is soft and non tender",
]
SUBJECTS = ["The patient", "Mr Smith", "Mrs Jones", "She", "He", "The veteran", "Ms Lee", "Our patient",
            "The resident", "Mr Brown", "The client", "This woman"]


def toy_records(per_category: int = 8, n_none: int = 16) -> list[dict]:
    records = []
    for cid, phrase in KEYWORDS.items():
        for i in range(per_category):
            records.append({"id": f"{cid}-{i}", "text": f"{SUBJECTS[i % len(SUBJECTS)]} {phrase} (visit {i}).",
                            "labels": [cid]})
    for i in range(n_none):
        phrase = NONE_PHRASES[i % len(NONE_PHRASES)]
        records.append({"id": f"none-{i}", "text": f"{SUBJECTS[i % len(SUBJECTS)]}: {phrase}, note {i}.",
                        "labels": ["none"]})
    # a few multi-label sentences
    records.append({"id": "multi-0", "text": "His daughter noticed he keeps forgetting recent conversations.",
                    "labels": ["notice_by_others", "cognitive_impairment"]})
    records.append({"id": "multi-1", "text": "She needs help with bathing and was started on donepezil.",
                    "labels": ["requiring_assistance", "treatment_and_care"]})
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_synthetic(folder: Path, source: str, records: list[dict]) -> Path:
    texts = [r["text"] for r in records]
    frame = core_frame([text_row_id(t) for t in texts], source, texts, [r["labels"] for r in records])
    write_parquet_atomic(frame, folder / "part-00000.parquet")
    return folder


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


@pytest.fixture
def toy_gold_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "gold.jsonl", toy_records())
