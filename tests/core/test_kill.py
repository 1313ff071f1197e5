"""Kill test: SIGKILL or SIGTERM `label` and `synthesize` at random points, then resume with the same
command. Nothing may be lost or duplicated, no temporary shard may stay, and no process the command started
(engine core, worker, multiprocessing's resource tracker) may outlive it: a resume must never find an old
engine holding memory. SIGTERM must stop like Ctrl-C: exit code 130, one message, committed shards kept,
the stage marked interrupted in the manifest.

The command is `bin/generate`'s own entry point (tests/core/kill_entry.py) with a model-free engine that
is slow and starts an engine-core process, a worker below it and the resource tracker, as vLLM does
(tests/core/slow_engine.py). tests/core/test_engine_processes.py repeats a kill with vLLM itself.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT
from tests.core import processes

ENTRY = ROOT / "tests" / "core" / "kill_entry.py"
ENGINE = "tests.core.slow_engine:SlowEngine"
DELAY = 0.25  # seconds per engine batch (3 requests)
SENTENCES = 60
COMMANDS = {
    "label": ["label", "--limit", str(SENTENCES), "--shard-size", "2"],
    "synthesize": ["synthesize", "--per-category", "6", "--per-request", "2"],  # 10 categories x 3 requests
}
DATASET = {"label": "silver", "synthesize": "bronze"}
KILLS_PER_TASK = 5
SEED = int(os.environ.get("FACTORY_KILL_TEST_SEED", "13"))


def _notes(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for note in range(SENTENCES // 3):
        (folder / f"note_{note:03d}.txt").write_text(
            f"Patient {note} was seen in clinic today.\nShe forgets appointments, item {note}.\n"
            f"Plan: follow up in {note + 2} weeks.\n", encoding="utf-8")
    return folder


def _command(task: str, out: Path, notes: Path) -> list[str]:
    args = [*COMMANDS[task], "--engine", ENGINE, "--enforce-eager", "--out", str(out)]
    if task == "label":
        args += ["--notes", str(notes)]
    return [sys.executable, str(ENTRY), *args]


def _start(command: list[str], log: Path, marker: str, delay: float = DELAY) -> subprocess.Popen:
    """The command in a session of its own, its stderr in `<log>.stderr` (a file, not a pipe: a pipe would
    block the test for as long as any surviving child holds it open)."""
    env = {**os.environ, "FACTORY_SLOW_ENGINE_LOG": str(log), "FACTORY_SLOW_ENGINE_DELAY": str(delay),
           processes.MARKER: marker}
    with _stderr_file(log).open("w") as stderr:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)


def _stderr_file(log: Path) -> Path:
    return log.with_name(log.name + ".stderr")


def _stderr(log: Path) -> str:
    return _stderr_file(log).read_text(encoding="utf-8", errors="replace")


def _lines(log: Path) -> list[str]:
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def _row_ids(out: Path, task: str) -> list[str]:
    folder = out / DATASET[task]
    shards = sorted(folder.glob("part-*.parquet"))
    return pl.read_parquet(shards)["row_id"].to_list() if shards else []


def _temp_files(out: Path) -> list[Path]:
    return [p for p in out.rglob("*") if ".tmp-" in p.name]


def _reference(task: str, tmp_path: Path, notes: Path) -> list[str]:
    out, log, marker = tmp_path / f"{task}-reference", tmp_path / "reference.log", uuid.uuid4().hex
    done = _start(_command(task, out, notes), log, marker, delay=0)
    try:
        assert done.wait(timeout=300) == 0, _stderr(log)[-3000:]
    finally:
        processes.kill_all(processes.marked(marker))
    ids = _row_ids(out, task)
    assert ids and len(ids) == len(set(ids))
    return ids


def _kill_once(task: str, out: Path, notes: Path, log: Path, kill: signal.Signals, batches: int,
               extra: float) -> dict:
    """Start the command, wait until its engine has finished `batches` batches (plus `extra` seconds),
    send `kill`, and check what it leaves behind. Returns the trial's measurements."""
    log.unlink(missing_ok=True)
    marker = uuid.uuid4().hex
    process = _start(_command(task, out, notes), log, marker)
    try:
        deadline = time.monotonic() + 180
        while process.poll() is None and time.monotonic() < deadline:
            lines = _lines(log)
            if lines and lines[0].startswith("started") and len(lines) - 1 >= batches:
                break
            time.sleep(0.01)
        time.sleep(extra)
        assert process.poll() is None, f"{task} finished before the kill point ({batches} batches): " + \
            _stderr(log)[-2000:]
        engine = processes.descendants(process.pid)
        os.kill(process.pid, kill)
        code = process.wait(timeout=120)
        stderr = _stderr(log)
        left = processes.survivors(engine, marker, process.pid, timeout=10)
    except BaseException:
        if process.poll() is None:
            process.kill()
        processes.kill_all(processes.marked(marker))
        raise
    described = {processes.describe(p) for p in left}
    processes.kill_all(left)
    return {"signal": kill.name, "batches": batches, "code": code, "stderr": stderr, "engine": engine,
            "left": described}


@pytest.mark.parametrize("task", ["label", "synthesize"])
def test_kill_and_resume_loses_duplicates_and_leaves_nothing(tmp_path, task):
    notes = _notes(tmp_path / "notes")
    reference = _reference(task, tmp_path, notes)
    rng = random.Random(f"{SEED}:{task}")
    out, log = tmp_path / f"{task}-killed", tmp_path / "engine.log"
    trials = []
    for trial in range(KILLS_PER_TASK):
        kill = signal.SIGTERM if trial % 2 else signal.SIGKILL
        result = _kill_once(task, out, notes, log, kill, batches=rng.randint(0, 2), extra=rng.uniform(0, DELAY))
        trials.append(result)
        # the engine core, its worker and the resource tracker were running, and none survived
        assert len(result["engine"]) >= 3, result
        assert not result["left"], f"processes outlived the killed command: {result['left']}"
        ids = _row_ids(out, task)
        assert len(ids) == len(set(ids)), "a committed row is duplicated"
        assert set(ids) <= set(reference), "a committed row is not one the uninterrupted run writes"
        if kill == signal.SIGTERM:
            assert result["code"] == 130, result["stderr"][-2000:]
            assert "interrupted: committed shards are kept" in result["stderr"], result["stderr"][-2000:]
            assert "Traceback" not in result["stderr"], result["stderr"][-3000:]
            manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
            assert manifest["stages"][DATASET[task]]["state"] == "interrupted"
            assert not _temp_files(out), _temp_files(out)
        else:
            assert result["code"] == -signal.SIGKILL

    marker = uuid.uuid4().hex
    final = _start(_command(task, out, notes), log, marker)
    try:
        assert final.wait(timeout=300) == 0, _stderr(log)[-3000:]
        assert not processes.survivors(set(), marker, final.pid, timeout=10)
    finally:
        processes.kill_all(processes.marked(marker))
    ids = _row_ids(out, task)
    assert len(ids) == len(set(ids)), "a row is duplicated after the resume"
    assert sorted(ids) == sorted(reference), "the resumed run's rows differ from an uninterrupted run's"
    assert not _temp_files(out), _temp_files(out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["stages"][DATASET[task]]["state"] == "complete"
    print(f"{task}: {len(trials)} kills ({', '.join(t['signal'] + '@' + str(t['batches']) for t in trials)}), "
          f"{sum(len(t['engine']) for t in trials)} engine processes killed with their command, 0 left; "
          f"{len(ids)} rows, 0 lost, 0 duplicated")
