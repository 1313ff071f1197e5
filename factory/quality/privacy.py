"""The PHI gate between bronze and anything shared: the scan (`check-phi`) and the bundle (`export`).

check-phi scans every bronze sentence with the scanner of factory/quality/phi.py, as the stage of
factory/stages/phi_scan.py, into the side table `<run>/bronze_phi/`: one row per bronze row_id with `phi_status`
("pass" / "quarantined") and `phi_reasons`. Bronze itself is never modified: quarantined rows stay where they
are, marked.

export copies only passing bronze rows, with an allowlist of columns (no local paths, no run folder
names), into a new bundle folder with DATACARD.md and manifest.json (sha256 of every file). Silver and
gold are never exported: there is no option for it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import polars as pl

from factory.core.errors import FactoryError
from factory.data.output_folder import Writer, check_output_folder, claim_output_folder
from factory.data.reviews import consensus, current_decisions
from factory.data.side_tables import SideTable
from factory.data.store import (atomic_write_bytes, atomic_write_json, atomic_write_parquet, content_key,
                                damaged_file_error, read_dataset, read_json, shard_paths, utc_now)
from factory.stages.phi_scan import PHI_DIR, PHI_SCHEMA, SCAN_INFO, load_bronze  # noqa: F401 - importers use them
# Columns a bundle may carry. Everything else (model_path, run_id, request_key, token counts, timestamps)
# stays home: a local path or a run folder name can identify a site or a person.
EXPORT_COLUMNS = ["row_id", "source", "text", "labels", "category", "attributes", "model_hash", "engine",
                  "prompt_hash", "schema_hash", "sampling", "seed"]
DEFAULT_LICENSE = "not chosen yet: the data owner sets it with --license before release"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_load_bronze = load_bronze


def _gold_texts(path: Path):
    if not path.exists():
        raise FactoryError(f"gold not found: {path}")
    try:
        if path.is_dir():
            if not shard_paths(path):
                raise FactoryError(f"no Parquet shards (part-NNNNN.parquet) in gold folder {path}")
            frame = read_dataset(path)
        elif path.suffix.lower() == ".parquet":
            frame = pl.read_parquet(path)
        elif path.suffix.lower() in (".jsonl", ".ndjson"):
            frame = _jsonl_frame(path)
        else:
            raise FactoryError(f"unsupported gold file {path}: use a folder of Parquet shards, .parquet or .jsonl")
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FactoryError(f"cannot read gold {path}: {first}") from None
    if "text" not in frame.columns:
        raise FactoryError(f"gold {path} has no 'text' column; columns: {', '.join(frame.columns)}")
    return (t for t in frame.get_column("text").cast(pl.String).to_list() if t)


def _jsonl_frame(path: Path) -> pl.DataFrame:
    """A JSONL gold file read line by line, as `gold import` reads it: a broken line is named, a BOM is fine."""
    from factory.data.gold import read_records

    columns, records = read_records(path)
    return pl.DataFrame({c: [None if r.get(c) is None else str(r.get(c)) for r in records] for c in columns},
                        schema={c: pl.String for c in columns})


def _build_overlap_index(notes: Path | None, gold: Path | None, ngram: int, text_column: str, chars: int = 0):
    """The n-gram index of the references, their counts, and a fingerprint of every reference sentence read
    (a scan against other references scans every row again). Reading the notes shows a progress bar over
    their characters (`chars`, from validate_notes), advanced within a note too, so one huge note does not
    look like a hang."""
    from factory.quality.phi import ShingleIndex

    if notes is None and gold is None:
        return None, {}, None
    index = ShingleIndex(n=ngram)
    counts = {}
    digest = hashlib.sha256()

    def hashed(texts):
        for text in texts:
            digest.update(text.encode("utf-8") + b"\0")
            yield text

    if notes is not None:
        from factory.core.progress import progress_bar

        before = index.sentences
        with progress_bar("chars") as progress:
            task = progress.add_task(f"reading notes {notes}", total=chars or None)
            index.add(hashed(_note_texts_with_progress(notes, text_column, progress, task)))
            progress.update(task, completed=chars)
        counts["notes_sentences"] = index.sentences - before
    digest.update(b"\1gold\1")
    if gold is not None:
        before = index.sentences
        index.add(hashed(_gold_texts(gold)))
        counts["gold_sentences"] = index.sentences - before
    counts["reference_ngrams"] = index.size
    return index, counts, content_key(references=digest.hexdigest(), ngram=ngram)


def _note_texts_with_progress(notes: Path, text_column: str, progress, task):
    from factory.data.corpus import iter_notes, iter_sentences

    done = 0

    def counted():
        nonlocal done
        for note in iter_notes(notes, text_column):
            yield note
            done += len(note.text)
            progress.update(task, completed=done)

    for sentence in iter_sentences(counted()):
        progress.update(task, completed=done + sentence.char_end)
        yield sentence.text


def scan_bronze(run_dir: Path, notes: Path | None, text_column: str, gold: Path | None, ngram: int,
                no_ner: bool) -> tuple[dict, Path]:
    """Scan every bronze row into `<run>/bronze_phi/` (the stage holds the run lock: no synthesize may append
    meanwhile); return the scan's summary and the table's newest shard."""
    from factory.core.progress import console
    from factory.quality.phi import PhiScanner
    from factory.stages.phi_scan import run_phi_scan

    _load_bronze(run_dir)
    notes_chars = 0
    if notes is not None:  # a broken notes file fails here, before anything is written
        from factory.data.corpus import validate_notes

        with console.status(f"checking notes {notes}"):
            notes_check = validate_notes(notes, text_column)
        notes_chars = notes_check.chars
        for decision in notes_check.decisions():
            console.print(f"[yellow]note:[/] {decision}", highlight=False)
    index, ref_counts, reference = _build_overlap_index(notes, gold, ngram, text_column, notes_chars)
    with console.status("loading PHI scanner" + ("" if no_ner else " (spaCy model)")):
        scanner = PhiScanner(use_ner=not no_ner, overlap=index)
    if not no_ner and scanner.ner is None:
        console.print("[yellow]presidio/spaCy not installed: scanning with rules only (untitled names are missed)[/]")
    info = run_phi_scan(run_dir, scanner, {"method": scanner.method, "ngram": ngram, "references": ref_counts},
                        reference)
    return info, shard_paths(Path(run_dir) / PHI_DIR)[-1]


def phi_status(run_dir: Path, bronze: pl.DataFrame) -> pl.DataFrame:
    """Bronze joined with its PHI status; refuses unless every current bronze row was scanned as it is now."""
    from factory.data.run_folder import load_manifest

    scan = ((load_manifest(run_dir) or {}).get("stages") or {}).get(PHI_DIR) or {}
    if scan.get("state") in ("running", "interrupted"):  # a stopped rescan may have judged only some rows anew
        raise FactoryError(f"the PHI scan of {run_dir} did not finish (it is {scan['state']}): run "
                           f"`bin/generate check-phi --run {run_dir}` again")
    current = SideTable(run_dir, "bronze", "phi").current(bronze)
    if current is None:
        raise FactoryError(f"bronze has not been scanned for PHI: run `bin/generate check-phi --run {run_dir}` first")
    stale = bronze.height - current.height
    if stale:
        raise FactoryError(f"{stale} of {bronze.height} bronze rows have no PHI status for their current text "
                           f"(bronze changed after check-phi): run `bin/generate check-phi --run {run_dir}` again")
    return bronze.join(current.select("row_id", "phi_status", "phi_types", "text_sha256"), on="row_id", how="left")


def _datacard(exported: pl.DataFrame, scanned: pl.DataFrame, scan: dict, license_text: str,
              review: dict | None = None) -> str:
    per_category = Counter(exported.get_column("category").to_list())
    scanned_per_category = Counter(scanned.get_column("category").to_list()) if "category" in scanned.columns else {}
    quarantined = scanned.filter(pl.col("phi_status") == "quarantined")
    by_type = Counter(t for types in quarantined.get_column("phi_types").to_list() for t in types)
    hashes = sorted(set(exported.get_column("model_hash").drop_nulls().to_list()))
    prompts = sorted(set(exported.get_column("prompt_hash").drop_nulls().to_list()))
    schemas = sorted(set(exported.get_column("schema_hash").drop_nulls().to_list()))
    sampling = sorted(set(exported.get_column("sampling").drop_nulls().to_list()))
    engines = sorted(set(exported.get_column("engine").drop_nulls().to_list()))
    lines = [
        "# Bronze data card: synthetic sentences for Alzheimer's disease sign/symptom classification",
        "",
        "## What it is",
        "",
        f"{exported.height} short clinical-style sentences written by a local language model, each labelled with",
        "the category it was written for (one of the taxonomy's sign/symptom categories of Alzheimer's disease,",
        "or `none`). They are meant as extra (\"bronze\") training data for sentence classifiers, next to",
        "expert-annotated (gold) and model-labelled real (silver) data, which are **not** part of this bundle.",
        "",
        "## How it was made",
        "",
        "- **Label-to-data**: the model was prompted with a category's definition and examples from the",
        "  taxonomy and sampled attributes (note section, speaker, assertion, severity, setting), and asked to",
        "  write new sentences. **No patient text was in any prompt.**",
        "  (Li, Wang & Yu, *Two Directions for Clinical Data Generation with Large Language Models*, 2023.)",
        "- Outputs were constrained to a JSON schema, validated, de-duplicated, and copies of the prompt's",
        "  example were dropped.",
        f"- Model sha256: {', '.join(f'`{h}`' for h in hashes) or 'unknown'}",
        f"- Engine: {', '.join(engines) or 'unknown'}; prompt template sha256: {', '.join(f'`{p[:16]}…`' for p in prompts)};"
        f" schema sha256: {', '.join(f'`{s[:16]}…`' for s in schemas)}",
        f"- Sampling: {'; '.join(f'`{s}`' for s in sampling) or 'unknown'}",
        "",
        "## Counts per category (exported rows)",
        "",
        "| category | exported | scanned |",
        "|---|---:|---:|",
    ]
    for category in sorted(set(per_category) | set(scanned_per_category)):
        lines.append(f"| {category} | {per_category.get(category, 0)} | {scanned_per_category.get(category, 0)} |")
    lines += [
        f"| **total** | **{exported.height}** | **{scanned.height}** |",
        "",
        "## PHI scan",
        "",
        f"- Rows scanned: {scanned.height}; passed: {scanned.height - quarantined.height};"
        f" quarantined (not exported): {quarantined.height}.",
    ]
    if by_type:
        lines.append("- Quarantined rows by finding type (a row can have several): "
                     + ", ".join(f"{kind} {count}" for kind, count in sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))) + ".")
    lines += _measured_recall()
    if review and review["reviewed"]:
        lines.append(f"- Clinician review (`bin/generate review`): {review['reviewed']} rows reviewed; left out of the "
                     f"rows that passed the scan: {review['withheld']} ({review['phi_flagged']} flagged for PHI by a "
                     f"reviewer, {review['rejected']} rejected by a reviewer; a row can be both).")
    lines += [
        f"- Method: {scan.get('method', 'factory.quality.phi')}.",
        f"- Verbatim-overlap check: {_overlap_line(scan)}",
        f"- Scanned at: {scan.get('scanned_at', 'unknown')}.",
        "",
        "**Caveat.** The scan is an automated first pass, not a guarantee. Rule- and NER-based detectors miss",
        "unusual names, identifiers in unexpected formats, and indirect identification (rare combinations of",
        "details). A person should review a sample before wide release, and anyone who finds PHI should report it",
        "to the data owner.",
        "",
        "## Intended use and licence",
        "",
        "- Intended use: research and development of clinical NLP classifiers for signs and symptoms of",
        "  Alzheimer's disease, for example data augmentation and pre-training alongside real annotated data.",
        "- Not for: clinical decision-making about any person, or as a description of real patients. The",
        "  sentences are model-written and not clinically validated; labels are the category each sentence was",
        "  requested for and can be wrong.",
        f"- Licence: {license_text}.",
        "",
        "## Files",
        "",
        "- `bronze/part-00000.parquet`: columns " + ", ".join(f"`{c}`" for c in exported.columns) + ".",
        "- `manifest.json`: sha256 of every file in this bundle.",
        "",
    ]
    return "\n".join(lines)


def _measured_recall() -> list[str]:
    """The scanner's recall per HIPAA kind on the project's planted sets, from the file phi_eval wrote
    (docs/phi_recall.json; tests/quality/test_phi_recall.py fails when it no longer matches the scanner)."""
    from factory.quality.phi_eval import RECALL_FILE, recall_markdown

    try:
        document = json.loads(RECALL_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["- Measured recall of the scan: see the factory's README (Privacy: measured recall per HIPAA kind)."]
    return ["", "Measured recall of this scan per HIPAA kind, on sentences with planted identifiers written for the",
            "factory (not patient data; `python -m factory.quality.phi_eval`):", "", *recall_markdown(document), ""]


def _overlap_line(scan: dict) -> str:
    refs = scan.get("references") or {}
    if not refs:
        return "not run (check-phi was given no --notes or --gold)."
    parts = []
    if "notes_sentences" in refs:
        parts.append(f"{refs['notes_sentences']} notes sentences")
    if "gold_sentences" in refs:
        parts.append(f"{refs['gold_sentences']} gold sentences")
    return f"no exported sentence shares a {scan.get('ngram', '?')}-word run with {' or '.join(parts)}."


_DATASET_FOLDER = re.compile(r"^(?:silver|bronze|gold|failed)(?:_[a-z0-9_]+)?$")


def _refuse_out_inside_datasets(run_dir: Path, out: Path) -> None:
    """A bundle inside silver/, bronze/, failed/ or a <dataset>_<kind> side table would sit among the run's
    own shards (and a later reader might take it for them)."""
    run, target = run_dir.expanduser().resolve(), out.expanduser().resolve()
    try:
        parts = target.relative_to(run).parts
    except ValueError:
        return
    if not parts:
        raise FactoryError(f"--out {out} is the run folder itself; choose a new folder, e.g. {run_dir / 'share'}")
    top = parts[0]
    if _DATASET_FOLDER.match(top) or shard_paths(run / top):
        raise FactoryError(f"--out {out} is inside the run's dataset folder {top}/; choose a folder outside "
                           f"silver/, bronze/, failed/ and the side tables, e.g. {run_dir / 'share'}")


def export_bundle(run_dir: Path, out: Path, license_text: str, replace: bool = False) -> tuple[int, int]:
    """Write the bundle; return (rows exported, rows scanned). With `replace`, a bundle that `export` wrote
    earlier at `out` is replaced whole (the new one is built beside it, then swapped in)."""
    from factory.data.run_folder import lock_for_reading

    _refuse_out_inside_datasets(run_dir, out)
    check_output_folder(out, EXPORT_WRITER, replace)  # before anything is read
    bronze = _load_bronze(run_dir)
    held = lock_for_reading(run_dir)  # noqa: F841 - the run lock, kept until we return: bronze cannot grow meanwhile
    bronze = _load_bronze(run_dir)
    joined = phi_status(run_dir, bronze)
    passing = joined.filter(pl.col("phi_status") == "pass")
    if passing.height == 0:
        raise FactoryError(f"no bronze row of {run_dir} passed the PHI scan; nothing to export")
    # A row a reviewer flagged for PHI or rejected (its current decision, for its current text) never leaves.
    verdicts = consensus(current_decisions(run_dir, "bronze", rows=bronze.select("row_id", "text")))
    passed_ids = set(passing.get_column("row_id").to_list())
    withheld = (verdicts.phi_flagged | verdicts.rejected) & passed_ids
    review = {"reviewed": verdicts.reviewed, "withheld": len(withheld),
              "phi_flagged": len(verdicts.phi_flagged & passed_ids), "rejected": len(verdicts.rejected & passed_ids)}
    passing = passing.filter(~pl.col("row_id").is_in(sorted(withheld)))
    if passing.height == 0:
        raise FactoryError(f"every bronze row of {run_dir} that passed the PHI scan was flagged for PHI or rejected by "
                           "a reviewer; nothing to export")
    exported = passing.select([c for c in EXPORT_COLUMNS if c in passing.columns]).sort(["category", "row_id"])
    scan_path = run_dir / PHI_DIR / SCAN_INFO
    scan = read_json(scan_path) if scan_path.is_file() else {}
    if not isinstance(scan, dict):
        raise damaged_file_error(scan_path, "not a JSON object")

    with claim_output_folder(out.expanduser().absolute(), EXPORT_WRITER, replace) as folder:
        tmp = folder.build
        try:
            (tmp / "bronze").mkdir(parents=True)
            atomic_write_parquet(exported, tmp / "bronze" / "part-00000.parquet")
            atomic_write_bytes(tmp / "DATACARD.md", _datacard(exported, joined, scan, license_text, review).encode("utf-8"))
            files = sorted(p for p in tmp.rglob("*") if p.is_file())
            manifest = {
                "written_by": EXPORT_WRITER.written_by,
                "created_at": utc_now().isoformat(),
                "rows": exported.height,
                "counts_per_category": dict(sorted(Counter(exported.get_column("category").to_list()).items())),
                "phi_scan": {"scanned": joined.height, "passed": passing.height + review["withheld"],
                             "quarantined": joined.height - passing.height - review["withheld"], "method": scan.get("method")},
                "review": review,
                "files": {p.relative_to(tmp).as_posix(): {"sha256": _sha256_file(p), "bytes": p.stat().st_size} for p in files},
            }
            atomic_write_json(tmp / "manifest.json", manifest)
        except OSError as exc:
            raise FactoryError(f"cannot write bundle {out}: {exc.strerror or exc}") from None
    return exported.height, joined.height


def _is_bundle(folder: Path) -> bool:
    """A folder `export` wrote: its manifest lists DATACARD.md and the bronze shard, and nothing else is there."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    listed = set(manifest.get("files", {})) if isinstance(manifest, dict) else set()
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"manifest.json"}
    return {"DATACARD.md", "bronze/part-00000.parquet"} <= listed and present == listed


# A bundle is shared: an earlier one is replaced only with --replace, and only while it is exactly what its
# manifest lists (bundles before the written_by key are recognised by that alone).
EXPORT_WRITER = Writer("export", marker="manifest.json", needs_replace=True, legacy=_is_bundle, marks_itself=True)
