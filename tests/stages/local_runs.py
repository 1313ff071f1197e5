"""Run folders for the stages that ask no LLM (dedup, the PHI scan, the noise flags): bronze and silver rows
written directly, a stand-in encoder and scanner, and a way to stop a stage from inside a unit."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import numpy as np

from factory.data.rows import normalise_text
from factory.data.store import BRONZE_SCHEMA, SILVER_SCHEMA, ShardWriter, content_key

BRONZE_TEXTS = ["She keeps forgetting where she parked the car.", "MRI shows bilateral hippocampal atrophy.",
                "He needs reminders to take his evening medications.", "Lungs are clear to auscultation bilaterally.",
                "he needs reminders to take his evening medications!", "Her son says she got lost driving home."]


def bronze_row(index: int, text: str) -> dict:
    request_key = content_key(task="synthesize", index=index)
    return {"row_id": content_key(request_key=request_key, item_index=0), "source": "bronze", "text": text,
            "labels": ["memory_loss"], "category": "memory_loss", "attributes": json.dumps({}), "request_key": request_key,
            "request_index": index, "item_index": 0, "run_id": "r", "model_path": "/m", "model_hash": "ab" * 32,
            "engine": "fake", "prompt_hash": "p", "schema_hash": "s", "sampling": "{}", "seed": index,
            "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1, "attempts": 1,
            "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}


def add_bronze(run, texts, start: int = 0) -> list[dict]:
    rows = [bronze_row(start + i, t) for i, t in enumerate(texts)]
    ShardWriter(run / "bronze", BRONZE_SCHEMA).write(rows)
    return rows


def add_silver(run, texts) -> list[dict]:
    rows = [{"row_id": f"s{i}", "source": "silver", "text": t, "labels": ["none"], "note_id": "n", "sentence_index": i,
             "char_start": 0, "char_end": len(t), "created_at": datetime(2026, 1, 1, tzinfo=timezone.utc)}
            for i, t in enumerate(texts)]
    ShardWriter(run / "silver", SILVER_SCHEMA).write(rows)
    return rows


class WordEncoder:
    """A stand-in sentence encoder: L2-normalised bags of hashed words (equal texts embed equally)."""

    fingerprint = "word-encoder-1"

    def __init__(self):
        self.calls = 0

    def embed(self, texts):
        self.calls += 1
        vectors = np.zeros((len(texts), 64))
        for i, text in enumerate(texts):
            for word in normalise_text(text).split():
                vectors[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def stop_at(task, unit_number: int):
    """Make `task` raise KeyboardInterrupt (Ctrl-C) while building the rows of its `unit_number`-th unit."""
    rows, seen = task.rows, []

    def stopping(unit, results, lineage):
        seen.append(unit.key)
        if len(seen) == unit_number:
            raise KeyboardInterrupt
        return rows(unit, results, lineage)

    task.rows = stopping
    return task


def manifest(run) -> dict:
    return json.loads((run / "manifest.json").read_text())
