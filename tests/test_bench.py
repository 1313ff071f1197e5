"""bin/bench's pure logic (factory/bench.py) and a run of its cheapest configuration. No timings asserted."""

import json
import subprocess
import sys

from factory.bench import (
    PeakRSS,
    bandwidth_bound,
    child_corpus,
    child_sigterm,
    format_table,
    parse_args,
    plan,
    ratios,
    split_ratios,
    synthetic_notes,
)
from factory.data.corpus import Note, iter_sentences
from tests.conftest import ROOT


def test_synthetic_corpus_has_exactly_the_asked_number_of_sentences():
    for size in (7, 1000):
        notes = synthetic_notes(size)
        assert len(list(iter_sentences(Note(str(i), text) for i, text in enumerate(notes)))) == size


def test_bandwidth_bound_is_bandwidth_over_weight_bytes():
    assert bandwidth_bound(3350, 16 * 10**9) == 3350e9 / 16e9  # an 8B bf16 model on a 3.35 TB/s GPU: ~209 tok/s
    assert bandwidth_bound(None, 10**9) is None and bandwidth_bound(100, 0) is None


def test_ratios_compare_the_named_configurations():
    rows = [
        {"config": "vllm xgrammar batched", "sentences_per_s": 8.0, "output_tokens_per_s": 160.0},
        {"config": "transformers batched", "sentences_per_s": 2.0},
        {"config": "vllm unconstrained batched", "sentences_per_s": 4.0, "output_tokens_per_s": 200.0},
        {"config": "transformers single", "ok": False, "error": "boom"},
    ]
    got = ratios(rows)
    assert got["vllm/transformers batched (sentences/s)"] == 4.0
    assert got["constrained/unconstrained (sentences/s)"] == 2.0
    assert got["constrained/unconstrained (output tok/s)"] == 0.8
    assert got["vllm/transformers one-at-a-time (sentences/s)"] is None  # a failed row gives no ratio


def test_table_shows_valid_counts_and_failures():
    table = format_table([
        {"config": "vllm xgrammar batched", "n": 48, "seconds": 6.0, "sentences_per_s": 8.0, "valid": 47},
        {"config": "vllm guidance batched", "ok": False, "error": "engine failed"},
    ])
    assert "47/48" in table and "FAILED: engine failed" in table
    assert table.splitlines()[0].startswith("config")


def test_every_configuration_uses_the_same_model_and_sentences_and_skip_works():
    args = parse_args(["--model", "/m", "--sentences", "12", "--skip", "guidance", "--memory-sizes", "10,20"])
    specs = plan(args)
    engines = [s for s in specs if s["kind"] == "engine"]
    assert {s["model"] for s in specs} == {"/m"}
    # vLLM labels all 12; transformers (slow on CPU) the first --transformers-sentences of the same ones
    assert {s["sentences"] for s in engines if s["engine"] == "vllm"} == {12}
    assert [s["sentences"] for s in engines if s["engine"] == "transformers"] == [8]
    on_gpu = [s for s in plan(args, cuda=True) if s.get("engine") == "transformers"]
    assert [(s["sentences"], s["single"]) for s in on_gpu] == [(12, 3)]  # fast there: all of the same sentences
    assert not any("guidance" in s.get("label", "") for s in specs)
    assert [s["sentences"] for s in specs if s["kind"] == "memory"] == [10, 20]
    assert sum(1 for s in engines if s.get("rerun")) == 1 and sum(1 for s in engines if s.get("unconstrained")) == 1


def test_peak_rss_includes_child_processes():
    with PeakRSS(interval=0.02) as rss:
        before = rss.sample()
        child = subprocess.Popen([sys.executable, "-c", "x = bytearray(300 * 2**20); import sys; sys.stdin.read()"],
                                 stdin=subprocess.PIPE)
        while rss.sample() - before < 250 * 2**20 and child.poll() is None:
            pass  # until the child has touched its 300 MB (or died)
        child.communicate(b"")
    assert rss.peak - before >= 250 * 2**20


def test_the_memory_scan_runs_end_to_end(tmp_path):
    out = tmp_path / "bench.json"
    command = [sys.executable, str(ROOT / "bin" / "bench"), "--skip", "vllm", "--skip", "transformers", "--skip", "corpus",
               "--memory-sizes", "30,60", "--json", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    scans = [row for row in report["rows"] if row["config"].startswith("memory scan")]
    assert [(row["n"], row["valid"]) for row in scans] == [(30, 30), (60, 60)]
    assert all(row["peak_rss_gb"] > 0 for row in scans)
    assert "memory scan 60 sentences" in result.stdout and "trivial engine" in result.stdout


def test_the_corpus_configuration_splits_side_by_side_and_finds_the_broken_row(tmp_path):
    rows = child_corpus({"split_mb": [0.02, 0.04], "blob_mb": 0.03, "work": str(tmp_path)})
    assert [r["config"] for r in rows] == ["corpus split 0.02 MB one line", "corpus split 0.04 MB one line",
                                           "corpus split 0.03 MB no spaces", "corpus check 50001-row jsonl"]
    assert all(r["valid"] == r["n"] > 0 for r in rows if "valid" in r)  # every sentence found; the bad row named
    assert abs(rows[1]["n"] - 2 * rows[0]["n"]) <= 1  # twice the text, twice the sentences
    specs = plan(parse_args(["--model", "/m", "--split-mb", "1,2,4"]))
    assert [(s["split_mb"], s["blob_mb"]) for s in specs if s["kind"] == "corpus"] == [([1.0, 2.0, 4.0], 3.0)]
    assert not [s for s in plan(parse_args(["--model", "/m", "--skip", "corpus"])) if s["kind"] == "corpus"]


def test_the_sigterm_configuration_times_a_stop_after_the_first_shard(tmp_path, monkeypatch):
    """Run here with the kill test's model-free slow engine (tests/core/kill_entry.py); bin/bench runs vLLM."""
    monkeypatch.setenv("FACTORY_SLOW_ENGINE_DELAY", "0.3")  # 60 sentences take ~6 s: the signal lands mid-run
    (row,) = child_sigterm({"work": str(tmp_path), "sentences": 60, "max_tokens": 64, "model": None,
                            "entry": str(ROOT / "tests" / "core" / "kill_entry.py"),
                            "engine": "tests.core.slow_engine:SlowEngine"})
    assert row.get("ok", True), row
    assert row["config"] == "vllm sigterm stop" and row["exit_code"] == 130 and 0 < row["n"] < 60
    assert row["seconds"] >= 0  # measured, never judged: bin/bench prints it
    specs = [s for s in plan(parse_args(["--model", "/m"])) if s["kind"] == "sigterm"]
    assert [s["label"] for s in specs] == ["vllm sigterm stop"]
    assert not [s for s in plan(parse_args(["--model", "/m", "--skip", "vllm"])) if s["kind"] == "sigterm"]


def test_split_ratios_compare_each_size_with_the_smallest():
    rows = [{"config": "corpus split 2 MB one line", "split_mb": 2.0, "seconds": 10.0},
            {"config": "corpus split 4 MB one line", "split_mb": 4.0, "seconds": 21.0},
            {"config": "corpus split 8 MB one line", "ok": False, "error": "timed out"}]
    assert split_ratios(rows) == {"corpus split 4 MB / 2 MB (seconds; linear: 2)": 2.1}
    assert ratios(rows)["corpus split 4 MB / 2 MB (seconds; linear: 2)"] == 2.1
    assert split_ratios(rows[:1]) == {}


def test_a_cuda_machine_is_reported_with_its_gpu(monkeypatch):
    from types import SimpleNamespace

    from factory.bench import _device

    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=80 * 2**30)
    cuda = SimpleNamespace(is_available=lambda: True, device_count=lambda: 2, get_device_properties=lambda i: props)
    monkeypatch.setitem(sys.modules, "torch", SimpleNamespace(cuda=cuda))
    device = _device()
    assert (device["device"], device["gpu"], device["gpus"], device["gpu_memory_gb"]) == ("cuda", props.name, 2, 80.0)
