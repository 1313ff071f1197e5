"""check-phi and export on a small fake run: only passing bronze leaves, without local paths, with a data card."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import datetime, timezone

import polars as pl
import pytest
from click.testing import CliRunner

from factory.core import netguard
from factory.cli.main import main
from factory.core.errors import FactoryError
from factory.data.store import BRONZE_SCHEMA, ShardWriter, content_key
from tests.conftest import ROOT

MODEL_HASH = "ab" * 32
MODEL_PATH = "/home/dr_jones/st-elsewhere-models/llama-3-8b-instruct"
CLEAN = {
    "memory_loss": ["She keeps forgetting where she put her keys and glasses.",
                    "He repeats the same question several times within an hour.",
                    "Her husband says she no longer remembers recent conversations."],
    "disorientation": ["He got lost driving to a store he has visited for years.",
                       "She was unsure of the day of the week during the visit."],
    "none": ["Lungs are clear to auscultation bilaterally.",
             "BP 132/84, HR 72, afebrile."],
}
PLANTED = [("memory_loss", "Mrs. Eleanor Whitaker forgets her grandchildren's names."),
           ("disorientation", "This 94 y/o man was found wandering near 77 Elm Street at night.")]
NOTE_SENTENCE = "Patient is a pleasant woman who lives with her husband in a two story house near the lake."
COPIED = "The caregiver said the patient lives with her husband in a two story house near the lake."


def _row(category: str, index: int, text: str) -> dict:
    request_key = content_key(task="synthesize", category=category, index=index)
    return {
        "row_id": content_key(request_key=request_key, item_index=0), "source": "bronze", "text": text,
        "labels": [category], "category": category,
        "attributes": json.dumps({"note_section": "HPI", "speaker": "clinician"}, sort_keys=True),
        "request_key": request_key, "request_index": index, "item_index": 0,
        "run_id": "run-eleanor-whitaker", "model_path": MODEL_PATH, "model_hash": MODEL_HASH, "engine": "vllm",
        "prompt_hash": "cd" * 32, "schema_hash": "ef" * 32,
        "sampling": json.dumps({"max_tokens": 512, "temperature": 0.8, "top_p": 0.95}, sort_keys=True),
        "seed": 1000 + index, "finish_reason": "stop", "prompt_tokens": 300, "completion_tokens": 40, "attempts": 1,
        "created_at": datetime(2026, 11, 1, tzinfo=timezone.utc),
    }


def _make_run(tmp_path, extra: list[tuple[str, str]] = ()):
    run = tmp_path / "run"
    writer = ShardWriter(run / "bronze", BRONZE_SCHEMA)
    rows = [_row(c, i, t) for c, texts in CLEAN.items() for i, t in enumerate(texts)]
    writer.write(rows[:4])  # two shards, as a resumed run leaves them
    writer.write(rows[4:])
    planted = [_row(c, 100 + i, t) for i, (c, t) in enumerate([*PLANTED, *extra])]
    writer.write(planted)
    return run, rows, planted


@pytest.fixture
def refused(monkeypatch):
    """Every connection the network guard refuses during the test, even if a library swallows the error."""
    calls = []
    original = netguard._refuse

    def recording(target):
        calls.append(target)
        original(target)

    monkeypatch.setattr(netguard, "_refuse", recording)
    return calls


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True)


def test_check_phi_then_export(tmp_path, refused):
    assert netguard._installed  # conftest forced offline mode: the guard is live during the scan
    run, clean_rows, planted = _make_run(tmp_path)
    bronze_before = sorted(p.read_bytes() for p in (run / "bronze").glob("part-*.parquet"))

    result = invoke("check-phi", "--run", run)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "rows scanned: 9" in result.output and "passed: 7" in result.output and "quarantined: 2" in result.output
    assert refused == []  # the scan made no network attempt (tldextract, model hub, ...)

    status = pl.read_parquet(run / "bronze_phi" / "part-00000.parquet")
    assert status.height == 9 and status["row_id"].n_unique() == 9
    by_id = {r["row_id"]: r for r in status.iter_rows(named=True)}
    for row in planted:
        assert by_id[row["row_id"]]["phi_status"] == "quarantined"
    reasons = by_id[planted[1]["row_id"]]["phi_reasons"]
    assert "age_over_89: 94 y/o" in reasons and any(r.startswith("street_address: 77 Elm Street") for r in reasons)
    assert all(by_id[r["row_id"]]["phi_status"] == "pass" and by_id[r["row_id"]]["phi_reasons"] == [] for r in clean_rows)
    # bronze itself is untouched: quarantined rows are marked, not deleted
    assert sorted(p.read_bytes() for p in (run / "bronze").glob("part-*.parquet")) == bronze_before
    assert json.loads((run / "manifest.json").read_text())["stages"]["bronze_phi"]["quarantined"] == 2

    bundle = tmp_path / "share" / "bundle"
    result = invoke("export", "--run", run, "--out", bundle)
    assert result.exit_code == 0, (result.output, result.exception)
    assert "exported 7 of 9" in result.output

    exported = pl.read_parquet(bundle / "bronze" / "part-00000.parquet")
    assert sorted(exported["row_id"]) == sorted(r["row_id"] for r in clean_rows)
    assert not set(exported["text"]) & {t for _, t in PLANTED}
    for dropped in ("model_path", "run_id", "request_key", "created_at"):
        assert dropped not in exported.columns
    for kept in ("row_id", "text", "labels", "category", "attributes", "model_hash", "prompt_hash", "schema_hash",
                 "sampling", "seed"):
        assert kept in exported.columns
    assert set(exported["model_hash"]) == {MODEL_HASH}

    card = (bundle / "DATACARD.md").read_text()
    assert "| memory_loss | 3 | 4 |" in card and "| disorientation | 2 | 3 |" in card and "| none | 2 | 2 |" in card
    assert "**7**" in card and "quarantined (not exported): 2" in card
    assert MODEL_HASH in card and "first pass, not a guarantee" in card and "No patient text" in card
    assert "Licence" in card and "Intended use" in card
    everything = "".join(p.read_text(errors="ignore") for p in bundle.rglob("*") if p.is_file() and p.suffix != ".parquet")
    everything += exported.with_columns(pl.col("labels").list.join(",")).write_csv()
    for secret in (MODEL_PATH, "dr_jones", "Whitaker", "Elm Street", "run-eleanor"):
        assert secret not in everything

    manifest = json.loads((bundle / "manifest.json").read_text())
    files = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {"manifest.json"}
    assert set(manifest["files"]) == files == {"bronze/part-00000.parquet", "DATACARD.md"}
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((bundle / name).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["rows"] == 7 and manifest["phi_scan"]["quarantined"] == 2
    assert not list((tmp_path / "share").glob(".bundle.tmp-*"))  # the temp folder was renamed, not left

    # a second export into the now non-empty bundle is refused
    again = invoke("export", "--run", run, "--out", bundle)
    assert again.exit_code != 0 and isinstance(again.exception, FactoryError)
    assert "not empty" in str(again.exception)
    assert refused == []


def test_export_before_check_phi_is_refused(tmp_path):
    run, _, _ = _make_run(tmp_path)
    result = subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), "export", "--run", str(run),
                             "--out", str(tmp_path / "bundle")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "check-phi" in lines[0], result.stderr
    assert not (tmp_path / "bundle").exists()


def test_export_refuses_bronze_that_changed_after_the_scan(tmp_path):
    run, _, _ = _make_run(tmp_path)
    assert invoke("check-phi", "--run", run, "--no-ner").exit_code == 0
    ShardWriter(run / "bronze", BRONZE_SCHEMA).write([_row("memory_loss", 50, "She forgets appointments.")])
    result = invoke("export", "--run", run, "--out", tmp_path / "bundle")
    assert isinstance(result.exception, FactoryError)
    assert "1 of 10 bronze rows have no PHI status" in str(result.exception)
    assert not (tmp_path / "bundle").exists()


def test_export_into_non_empty_folder_is_refused(tmp_path):
    run, _, _ = _make_run(tmp_path)
    assert invoke("check-phi", "--run", run, "--no-ner").exit_code == 0
    out = tmp_path / "bundle"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = invoke("export", "--run", run, "--out", out)
    assert isinstance(result.exception, FactoryError) and "not empty" in str(result.exception)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert invoke("export", "--run", run, "--out", empty).exit_code == 0  # an existing empty folder is fine
    assert (empty / "DATACARD.md").is_file()


def test_verbatim_overlap_with_notes_and_gold(tmp_path, refused):
    run, _, _ = _make_run(tmp_path, extra=[("memory_loss", COPIED),
                                            ("none", "Gold says she cannot name the current president of the country at all.")])
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "n1.txt").write_text(f"HPI:\n{NOTE_SENTENCE} She forgets names.\n", encoding="utf-8")
    gold = tmp_path / "gold.jsonl"
    gold.write_text(json.dumps({"text": "She cannot name the current president of the country at all today.",
                                "labels": ["memory_loss"]}) + "\n", encoding="utf-8")
    result = invoke("check-phi", "--run", run, "--notes", notes, "--gold", gold, "--ngram", "8", "--no-ner")
    assert result.exit_code == 0, (result.output, result.exception)
    assert "verbatim_overlap: 2" in result.output
    status = pl.read_parquet(run / "bronze_phi" / "part-00000.parquet")
    overlap = status.filter(pl.col("phi_types").list.contains("verbatim_overlap"))
    assert overlap.height == 2
    scan = json.loads((run / "bronze_phi" / "scan.json").read_text())
    assert scan["references"]["notes_sentences"] == 2 and scan["references"]["gold_sentences"] == 1
    assert refused == []


def test_check_phi_errors(tmp_path):
    missing = invoke("check-phi", "--run", tmp_path / "nope")
    assert isinstance(missing.exception, FactoryError) and "run folder not found" in str(missing.exception)
    (tmp_path / "empty").mkdir()
    no_bronze = invoke("check-phi", "--run", tmp_path / "empty")
    assert isinstance(no_bronze.exception, FactoryError) and "no bronze shards" in str(no_bronze.exception)
    run, _, _ = _make_run(tmp_path)
    bad_gold = invoke("check-phi", "--run", run, "--gold", tmp_path / "gold.csv", "--no-ner")
    assert isinstance(bad_gold.exception, FactoryError) and "gold not found" in str(bad_gold.exception)


def test_export_replace_swaps_an_earlier_bundle_and_nothing_else(tmp_path):
    """A rerun (e.g. of a recipe) replaces the bundle it wrote with --replace; without it, or over a folder
    that is not a bundle, it refuses and changes nothing."""
    run, _, _ = _make_run(tmp_path)
    assert invoke("check-phi", "--run", run, "--no-ner").exit_code == 0
    bundle = tmp_path / "share"
    assert invoke("export", "--run", run, "--out", bundle).exit_code == 0
    first = (bundle / "manifest.json").read_bytes()
    again = invoke("export", "--run", run, "--out", bundle)
    assert again.exit_code != 0 and "--replace" in str(again.exception)
    assert invoke("export", "--run", run, "--out", bundle, "--replace").exit_code == 0
    assert (bundle / "manifest.json").read_bytes() != first  # a new bundle (new created_at), same place
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".share")]  # no temp or old folder left
    user = tmp_path / "mine"
    user.mkdir()
    (user / "notes.txt").write_text("keep me")
    refused = invoke("export", "--run", run, "--out", user, "--replace")
    assert refused.exit_code != 0 and (user / "notes.txt").read_text() == "keep me"


def test_the_data_card_carries_the_measured_recall_per_hipaa_kind(tmp_path):
    run, _, _ = _make_run(tmp_path)
    assert invoke("check-phi", "--run", run, "--no-ner").exit_code == 0
    assert invoke("export", "--run", run, "--out", tmp_path / "share").exit_code == 0
    card = (tmp_path / "share" / "DATACARD.md").read_text()
    assert "Measured recall of this scan per HIPAA kind" in card
    assert "| DEVICE_ID |" in card and "| VEHICLE_ID |" in card and "all identifiers" in card
    assert "| BIOMETRIC |" in card and "| PHOTO |" in card and "| UNIQUE_ID |" in card  # kinds only set d plants
