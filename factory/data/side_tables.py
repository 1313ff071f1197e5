"""Side tables: tables keyed by `row_id` that judge a dataset without ever rewriting it.

Each lives in `<run>/<dataset>_<kind>/` (silver_check, silver_consistency, bronze_check, bronze_dedup,
bronze_phi, and later human review). A judgement applies to a row only while the row is still what was
judged: the same text (and, where labels were judged, the same labels). `SideTable.current()` is that
rule, written once; the flags that `compare`, `export` and the quality report use are read through it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.store import read_dataset, shard_paths


def side_table_dir(run_dir: Path, dataset: str, kind: str) -> Path:
    """`<run>/<dataset>_<kind>/`, e.g. silver_check, bronze_dedup."""
    return Path(run_dir) / f"{dataset}_{kind}"


def text_sha256(text: str | None) -> str:
    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Kind:
    """How one kind of side table is matched to the rows it judged."""

    name: str
    judged: tuple[str, ...]  # columns that must still equal the dataset row: "text", "labels", "text_sha256"
    newest: str | None  # column ordering repeated judgements (latest wins); None: one judgement per row
    produced_by: str  # the command that writes it (named in errors)


KINDS = {
    "check": Kind("check", ("text", "labels"), "created_at", "check"),
    "consistency": Kind("consistency", ("text", "labels"), "created_at", "consistency"),
    "dedup": Kind("dedup", ("text",), None, "dedup"),
    "phi": Kind("phi", ("text_sha256",), None, "check-phi"),
    # Clinician review: append-only decision events (several per row: reviewers, undo); `current()` gives every
    # event still about the row's text, and factory.data.reviews resolves them to one decision per reviewer.
    "review": Kind("review", ("text_sha256",), None, "review"),
}


class SideTable:
    """One side table of one dataset in one run folder."""

    def __init__(self, run_dir: Path, dataset: str, kind: str):
        if kind not in KINDS:
            raise FactoryError(f"unknown side table kind {kind!r}; known: {', '.join(KINDS)}")
        self.run_dir, self.dataset, self.kind = Path(run_dir), dataset, KINDS[kind]
        self.folder = side_table_dir(run_dir, dataset, kind)

    def exists(self) -> bool:
        return bool(shard_paths(self.folder))

    def read(self) -> pl.DataFrame | None:
        return read_dataset(self.folder) if self.exists() else None

    def dataset_rows(self) -> pl.DataFrame:
        return read_dataset(self.run_dir / self.dataset)

    def current(self, rows: pl.DataFrame | None = None) -> pl.DataFrame | None:
        """The judgement of every row whose judged fields are unchanged (the latest one where a row was
        judged more than once), joined to the dataset's row ids; None when the table was never written."""
        table = self.read()
        if table is None:
            return None
        if self.kind.newest:
            table = table.sort(self.kind.newest).unique("row_id", keep="last", maintain_order=True)
        rows = self.dataset_rows() if rows is None else rows
        wanted = [c for c in ("text", "labels") if c in rows.columns]
        rows = rows.select("row_id", *wanted)
        if "text_sha256" in self.kind.judged:
            rows = rows.with_columns(pl.col("text").map_elements(text_sha256, return_dtype=pl.String)
                                     .alias("_current_sha256"))
        judged_cols = [c for c in table.columns if c != "row_id" and c not in wanted]
        joined = rows.join(table.select("row_id", *judged_cols, *[c for c in wanted if c in table.columns]),
                           on="row_id", suffix="_judged")
        same = pl.lit(True)
        for column in self.kind.judged:
            if column == "text_sha256":
                same &= pl.col("text_sha256") == pl.col("_current_sha256")
            elif column == "labels":
                same &= pl.col("labels").list.join("|") == pl.col("labels_judged").list.join("|")
            else:
                same &= pl.col(column) == pl.col(f"{column}_judged")
        drop = [c for c in joined.columns if c.endswith("_judged") or c == "_current_sha256"]
        return joined.filter(same).drop(drop)

    def require_current(self, complete: bool = False) -> pl.DataFrame:
        """`current()`, or one clear error naming the command to run; with `complete`, every dataset row
        must have a current judgement (a row added or changed since then is an error, never a pass)."""
        current = self.current()
        if current is None:
            raise FactoryError(f"no {self.kind.name} table for {self.dataset} in {self.run_dir}; run "
                               f"`bin/generate {self.kind.produced_by} --run {self.run_dir}` first")
        if complete:
            all_ids = set(self.dataset_rows()["row_id"].to_list())
            stale = all_ids - set(current["row_id"].to_list())
            if stale:
                raise FactoryError(f"{len(stale)} of {len(all_ids)} {self.dataset} rows in {self.run_dir} are newer than "
                                   f"the {self.kind.name} table; run `bin/generate {self.kind.produced_by} --run "
                                   f"{self.run_dir}` again")
        return current

    def flagged(self, condition: pl.Expr, complete: bool = False) -> set[str]:
        return set(self.require_current(complete).filter(condition)["row_id"].to_list())


# ----------------------------------------------------------------------------------- the flags in use


def rejected_row_ids(run_dir: Path, dataset: str) -> set[str]:
    """Rows the verifier rejected (for their current text and labels)."""
    return SideTable(run_dir, dataset, "check").flagged(pl.col("verdict") == "reject")


def low_agreement_row_ids(run_dir: Path, min_agreement: float) -> set[str]:
    """Silver rows to leave out: the majority of samples disagrees with the silver labels, agreement is below
    the threshold, or the row was never sampled (no evidence of confidence)."""
    table = SideTable(run_dir, "silver", "consistency")
    confident = table.flagged(pl.col("silver_agrees") & (pl.col("agreement") >= min_agreement))
    return set(table.dataset_rows()["row_id"].to_list()) - confident


def duplicate_row_ids(run_dir: Path) -> set[str]:
    """Bronze rows dedup flagged; every bronze row must have been compared as it is now."""
    return SideTable(run_dir, "bronze", "dedup").flagged(pl.col("duplicate"), complete=True)


def quarantined_row_ids(run_dir: Path) -> set[str]:
    """Bronze rows the PHI scan quarantined; every bronze row must have been scanned as it is now."""
    return SideTable(run_dir, "bronze", "phi").flagged(pl.col("phi_status") != "pass", complete=True)


def excluded_row_ids(role: str, folders: list[Path], min_agreement: float | None, drop_rejected: bool,
                     drop_duplicates: bool) -> dict[str, set[str]]:
    """{reason: row ids} over all dataset folders of one role (`<run>/silver`, `<run>/bronze`), whose side
    tables sit beside them in the run folder; empty when no filter applies to the role."""
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
