"""A tiny run folder for the review tests: silver (two notes, 12 sentences) with verifier and consistency
side tables, bronze (4 sentences) with a PHI scan, optionally the demo gold as the run's gold; and a review
server started as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl
import pytest

from factory.data.side_tables import text_sha256
from factory.data.store import BRONZE_SCHEMA, SILVER_SCHEMA, ShardWriter, content_key

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)

NOTE_A = [
    ("Patient is a 78 year old woman seen for memory complaints.", ["none"], ""),
    ("She keeps forgetting recent conversations.", ["cognitive_impairment"], "keeps forgetting"),
    ("Her daughter reports she got lost driving to the store.", ["notice_by_others", "cognitive_impairment"],
     "daughter reports"),
    ("MoCA today was 19/30.", ["cognitive_assessment"], "MoCA today was 19/30"),
    ("Lungs are clear to auscultation.", ["none"], ""),
    ("She now needs help paying the bills.", ["requiring_assistance"], "needs help paying the bills"),
]
NOTE_B = [
    ("MRI of the brain shows hippocampal atrophy.", ["diagnostic_tests"], "hippocampal atrophy"),
    ("He is agitated in the evenings.", ["neuropsychiatric_symptoms"], "agitated"),
    ("Blood pressure is well controlled.", ["none"], ""),
    ("He was started on donepezil 5 mg nightly.", ["treatment_and_care"], "started on donepezil"),
    ("He had two falls last month.", ["physiological_changes"], "two falls"),
    ("Follow up in six weeks.", ["none"], ""),
]
BRONZE = [
    ("She repeats the same questions within minutes.", "cognitive_impairment", "pass", []),
    ("Mr. John Carter was seen at 12 Elm Street.", "notice_by_others", "quarantined", ["PERSON: John Carter"]),
    ("Her son fills her pill box every week.", "requiring_assistance", "pass", []),
    ("Clock drawing was abnormal.", "cognitive_assessment", "pass", []),
]


def lineage() -> dict:
    return {"run_id": "review-test", "model_path": "/models/m", "model_hash": "m" * 64, "engine": "fake",
            "prompt_hash": "p", "schema_hash": "s", "taxonomy_hash": "t", "sampling": "{}", "seed": 0,
            "finish_reason": "stop", "prompt_tokens": 1, "completion_tokens": 1, "attempts": 1, "created_at": NOW}


def build_run(run: Path) -> Path:
    silver = []
    for note_id, note in (("a", NOTE_A), ("b", NOTE_B)):
        for i, (text, labels, evidence) in enumerate(note):
            silver.append({"row_id": content_key(text=text, note=note_id), "source": "silver", "text": text,
                           "labels": labels, "evidence": evidence, "note_id": note_id, "sentence_index": i,
                           "char_start": 0, "char_end": len(text), **lineage()})
    ShardWriter(run / "silver", SILVER_SCHEMA).write(silver)
    # verifier: rejects one row; consistency: one disagreement, one low agreement, one row never sampled
    checks = [{"row_id": r["row_id"], "text": r["text"], "labels": r["labels"],
               "verdict": "reject" if r["text"].startswith("He is agitated") else "accept",
               "reason": "agitation alone is not enough" if r["text"].startswith("He is agitated") else "fits",
               "created_at": NOW} for r in silver]
    pl.DataFrame(checks).write_parquet((run / "silver_check").mkdir() or run / "silver_check" / "part-00000.parquet")
    votes = []
    for r in silver[:-1]:
        disagree = r["text"].startswith("Her daughter")
        agreement = 0.4 if disagree else (0.6 if r["text"].startswith("MoCA") else 1.0)
        majority = ["notice_by_others"] if disagree else r["labels"]
        votes.append({"row_id": r["row_id"], "text": r["text"], "labels": r["labels"], "samples": 5,
                      "valid_samples": 5, "majority_labels": majority, "agreement": agreement,
                      "votes": json.dumps({label: agreement for label in majority}),
                      "silver_agrees": not disagree, "created_at": NOW})
    (run / "silver_consistency").mkdir()
    pl.DataFrame(votes).write_parquet(run / "silver_consistency" / "part-00000.parquet")

    bronze, phi = [], []
    for i, (text, category, status, reasons) in enumerate(BRONZE):
        row_id = content_key(text=text, category=category)
        bronze.append({"row_id": row_id, "source": "bronze", "text": text, "labels": [category], "category": category,
                       "attributes": json.dumps({"note_section": "HPI", "speaker": "clinician"}), "request_key": "k",
                       "request_index": i, "item_index": 0, **lineage()})
        phi.append({"row_id": row_id, "phi_status": status, "phi_reasons": reasons,
                    "phi_types": [r.split(":")[0] for r in reasons], "text_sha256": text_sha256(text), "scanned_at": NOW})
    ShardWriter(run / "bronze", BRONZE_SCHEMA).write(bronze)
    (run / "bronze_phi").mkdir()
    pl.DataFrame(phi).write_parquet(run / "bronze_phi" / "part-00000.parquet")
    return run


@pytest.fixture
def review_run(tmp_path) -> Path:
    return build_run(tmp_path / "run")


def add_gold(run: Path) -> Path:
    """The demo gold (data/demo/gold.jsonl, in the repository) as the run's own gold, as `make demo` imports it."""
    from factory.data.gold import import_gold
    from factory.data.taxonomy import load_taxonomy

    import_gold(ROOT / "data" / "demo" / "gold.jsonl", load_taxonomy(), run / "gold")
    return run


@pytest.fixture
def review_run_with_gold(tmp_path) -> Path:
    return add_gold(build_run(tmp_path / "run_with_gold"))


@dataclass
class Server:
    process: subprocess.Popen
    url: str  # with the token

    @property
    def base(self) -> str:
        return self.url.split("/?")[0]

    @property
    def port(self) -> int:
        return int(self.base.rsplit(":", 1)[1])

    @property
    def token(self) -> str:
        return self.url.split("token=", 1)[1]

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


def start_server(run: Path, *args: str) -> Server:
    command = [sys.executable, "-m", "factory.cli.review", "--run", str(run), *args]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = process.stdout.readline()  # the one URL; blocks until the server listens
    if not re.match(r"^http://127\.0\.0\.1:\d+/\?token=\S+$", line.strip()):
        process.kill()
        raise AssertionError(f"no URL from the review server: {line!r} {process.stderr.read()[-2000:]}")
    server = Server(process, line.strip())
    deadline = time.monotonic() + 120  # a wait, not a speed claim: generous, so a loaded machine cannot fail it
    while True:  # uvicorn accepts once its loop runs
        try:
            urllib.request.urlopen(server.base + "/favicon.ico", timeout=2)
            return server
        except urllib.error.HTTPError:  # 401: it answers
            return server
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise AssertionError("review server did not answer: " + process.stderr.read()[-2000:])
            time.sleep(0.1)


@pytest.fixture
def servers():
    started: list[Server] = []

    def start(run: Path, *args: str) -> Server:
        server = start_server(run, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()
