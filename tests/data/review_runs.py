"""A small run folder with clinician review decisions written by the review app's own writer
(factory.review.store.ReviewLog), for the tests of what the decisions feed: compare, gold import
--from-review, export and the quality report."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from factory.data.side_tables import text_sha256
from factory.data.store import read_dataset
from factory.review.store import ReviewLog

from tests.review.conftest import build_run

# (sentence start, reviewer, decision, corrected labels, phi flag)
SILVER_DECISIONS = [
    ("She keeps forgetting", "dr_a", "accept", (), False),
    ("She keeps forgetting", "dr_b", "accept", (), False),
    ("MoCA today", "dr_a", "correct", ("cognitive_assessment", "diagnostic_tests"), False),
    ("Lungs are clear", "dr_a", "accept", (), False),
    ("He is agitated", "dr_a", "reject", (), False),
    ("He was started on donepezil", "dr_a", "accept", (), False),
    ("He was started on donepezil", "dr_b", "correct", ("requiring_assistance",), False),  # disagree
    ("He had two falls", "dr_b", "accept", (), False),
]
BRONZE_DECISIONS = [
    ("Her son fills", "dr_a", "accept", (), True),  # PHI flag
    ("Clock drawing", "dr_a", "reject", (), False),
    ("She repeats", "dr_a", "accept", (), False),
]


def write_decisions(run: Path, dataset: str, decisions) -> None:
    rows = read_dataset(run / dataset)
    log = ReviewLog(run, dataset)
    for start, reviewer, decision, corrected, phi in decisions:
        row = next(r for r in rows.iter_rows(named=True) if r["text"].startswith(start))
        log.append(row_id=row["row_id"], text_sha256=text_sha256(row["text"]), reviewer=reviewer, decision=decision,
                   shown_labels=row["labels"], corrected_labels=corrected, phi_flag=phi)


def reviewed_run(path: Path, silver: bool = True, bronze: bool = True) -> Path:
    run = build_run(path)
    # the consistency table as `consistency --logprobs` writes it: a token-probability confidence per row
    shard = run / "silver_consistency" / "part-00000.parquet"
    votes = pl.read_parquet(shard)
    pl.DataFrame(votes).with_columns(logprob_confidence=pl.Series([0.9 - 0.05 * i for i in range(votes.height)]))\
        .write_parquet(shard)
    if silver:
        write_decisions(run, "silver", SILVER_DECISIONS)
    if bronze:
        write_decisions(run, "bronze", BRONZE_DECISIONS)
    return run
