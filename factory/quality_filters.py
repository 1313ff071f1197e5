"""Which silver/bronze rows the quality side tables flag, for `compare` to leave out of training.

A dataset folder given to compare (`<run>/silver`, `<run>/bronze`) finds its side tables beside it in the
run folder. Filtering happens in memory: the rows stay on disk with their verdicts and reasons.
"""

from __future__ import annotations

from pathlib import Path


def excluded_row_ids(role: str, folders: list[Path], min_agreement: float | None, drop_rejected: bool,
                     drop_duplicates: bool) -> dict[str, set[str]]:
    """{reason: row ids} over all folders of one role; empty when no filter applies to the role."""
    from factory.check import rejected_row_ids
    from factory.consistency import low_agreement_row_ids
    from factory.dedup import duplicate_row_ids

    excluded: dict[str, set[str]] = {}
    for folder in folders:
        run_dir = Path(folder).resolve().parent
        if drop_rejected:
            excluded.setdefault("verifier rejected", set()).update(rejected_row_ids(run_dir, role))
        if role == "silver" and min_agreement is not None:
            excluded.setdefault(f"agreement < {min_agreement:g}", set()).update(low_agreement_row_ids(run_dir, min_agreement))
        if role == "bronze" and drop_duplicates:
            excluded.setdefault("duplicate", set()).update(duplicate_row_ids(run_dir))
    return excluded
