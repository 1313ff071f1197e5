"""Exactly once: kill a labelling or synthesis run with SIGKILL at several points, rerun it, and count
rows by key. A fake engine stands in for the model; the stage, store and run code are the real ones."""

import os
import signal
import subprocess
import sys
import time

import polars as pl
import pytest

from tests.conftest import ROOT

WORKER = """
import json, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tests.conftest import FakeEngine, json_output
from factory.engines.base import Sampling
from factory.engines.model_ref import ModelRef
from factory.data.run_folder import Run
from factory.stages.context import StageContext
from factory.data.taxonomy import load_taxonomy
from factory.data.corpus import Sentence
from factory.stages.label import run_label
from factory.stages.synthesize import run_synthesize

out, task, calls_file = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])

def respond(request, sampling, call):
    with calls_file.open("a") as f:
        f.write("x")
    time.sleep(0.01)
    if task == "label":
        return json_output({{"evidence": "", "labels": ["none"]}})
    return json_output({{"sentences": [f"Generated sentence {{request.seed}} number {{i}}." for i in range(3)]}})

engine = FakeEngine(respond)
ctx = StageContext(run=Run.open(out), model=ModelRef(out, "f" * 64, False), engine_name="fake",
                   sampling=Sampling(), seed=0, engine_factory=lambda: engine)
tax = load_taxonomy()
if task == "label":
    sentences = [Sentence(f"n{{i // 10}}", i % 10, 0, 10, f"Sentence number {{i}} of the corpus.") for i in range(60)]
    run_label(sentences, tax, ctx, shard_size=4)
else:
    run_synthesize(tax, ctx, per_category=9, per_request=3)
"""

EXPECTED = {"label": 60, "synthesize": 90}
DATASET = {"label": "silver", "synthesize": "bronze"}


def _start(out, task, calls_file):
    script = WORKER.format(root=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", script, str(out), task, str(calls_file)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _kill_after(process, calls_file, calls):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if calls_file.exists() and len(calls_file.read_text()) >= calls:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=60)


@pytest.mark.parametrize("task", ["label", "synthesize"])
def test_sigkill_at_several_points_loses_and_duplicates_nothing(tmp_path, task):
    out = tmp_path / "run"
    calls_file = tmp_path / "calls"
    for kill_at in (3, 11, 23):
        _kill_after(_start(out, task, calls_file), calls_file, kill_at)
    finisher = _start(out, task, calls_file)
    assert finisher.wait(timeout=120) == 0, finisher.stderr.read()

    rows = pl.read_parquet(out / DATASET[task])
    assert rows.height == EXPECTED[task]
    assert rows["row_id"].n_unique() == rows.height  # nothing duplicated
    assert not list((out / DATASET[task]).glob(".part-*"))  # no temporary file left behind

    before = len(calls_file.read_text())
    rerun = _start(out, task, calls_file)
    assert rerun.wait(timeout=120) == 0
    assert len(calls_file.read_text()) == before  # a finished job makes no LLM calls
    assert pl.read_parquet(out / DATASET[task]).height == EXPECTED[task]


def test_a_second_process_cannot_write_the_same_run_folder(tmp_path):
    from factory.core.errors import FactoryError
    from factory.data.run_folder import Run

    held = Run.open(tmp_path / "run")
    probe = subprocess.run([sys.executable, "-c", f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
                            f"from factory.data.run_folder import Run; Run.open({str(tmp_path / 'run')!r})"],
                           capture_output=True, text=True)
    assert probe.returncode != 0 and "in use by another factory process" in probe.stderr
    assert held.out.exists()
    with pytest.raises(FactoryError):
        Run.open(tmp_path / "run")
