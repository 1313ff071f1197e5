"""Shared fixtures: a scripted fake engine behind the real Engine interface, and small inputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from factory.core.offline import force_offline

force_offline()
# Keep the `datasets` Arrow cache of test runs out of the user's home cache.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="factory-tests-hf-")
# The suite's engine tests drive the 135M model (fast, prepared by `make setup`), not the catalogue's default
# LLM, which a test machine need not have downloaded; subprocesses inherit it.
os.environ["FACTORY_MODEL"] = "smollm2-135m-instruct"

from factory.engines.base import Engine, RawOutput, Request, Sampling  # noqa: E402
from factory.engines.model_ref import ModelRef  # noqa: E402
from factory.data.run_folder import Run  # noqa: E402
from factory.stages.context import StageContext  # noqa: E402
from factory.data.taxonomy import load_taxonomy  # noqa: E402
from factory.data.rows import core_frame, text_row_id, write_parquet_atomic  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class FakeEngine(Engine):
    """Answers each request with `respond(request, sampling, call_number)`; records every call."""

    name = "fake"

    def __init__(self, respond: Callable[[Request, Sampling, int], RawOutput]):
        self.respond = respond
        self.calls: list[tuple[list[Request], Sampling]] = []

    def _generate_raw(self, requests: list[Request], schema: dict, sampling: Sampling) -> list[RawOutput]:
        self.calls.append((requests, sampling))
        return [self.respond(r, sampling, len(self.calls)) for r in requests]

    @property
    def requests_seen(self) -> int:
        return sum(len(reqs) for reqs, _ in self.calls)


def json_output(value: dict) -> RawOutput:
    text = json.dumps(value)
    return RawOutput(text=text, finish_reason="stop", prompt_tokens=50, completion_tokens=len(text) // 4)


@pytest.fixture(scope="session")
def taxonomy():
    return load_taxonomy()


@pytest.fixture
def make_context(tmp_path):
    def make(engine: Engine, out: Path | None = None, seed: int = 0, sampling: Sampling | None = None) -> StageContext:
        model = ModelRef(path=tmp_path / "model", hash="f" * 64, embedded=False)
        return StageContext(
            run=Run.open(out or tmp_path / "run"),
            model=model,
            engine_name="fake",
            sampling=sampling or Sampling(max_tokens=64),
            seed=seed,
            engine_factory=lambda: engine,
        )

    return make


@pytest.fixture
def notes_dir(tmp_path) -> Path:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "a.txt").write_text(
        "HPI:\nShe keeps forgetting her keys. Her daughter manages her pills.\n\nPLAN:\n1. Start donepezil 5 mg nightly.\n",
        encoding="utf-8",
    )
    (folder / "b.txt").write_text("Lungs are clear. She keeps forgetting her keys.\nBP 132/84.\n", encoding="utf-8")
    return folder


# Trainer toy data: small, separable, no demo data needed.
# One distinctive phrase per category: a linear model separates these easily.
KEYWORDS = {
    "cognitive_impairment": "keeps forgetting recent conversations and gets confused",
    "notice_by_others": "his daughter noticed and is worried about the changes",
    "requiring_assistance": "needs help with bathing dressing and paying the bills",
    "physiological_changes": "had several falls with a shuffling gait and weight loss",
    "neuropsychiatric_symptoms": "is agitated at night and sees people who are not there",
    "cognitive_assessment": "scored 18 of 30 on the MoCA screening test",
    "diagnostic_tests": "MRI of the brain shows hippocampal atrophy on imaging",
    "dementia_diagnosis": "was diagnosed with Alzheimer dementia of moderate stage",
    "treatment_and_care": "was started on donepezil and referred to memory care",
}
NONE_PHRASES = [
    "lungs are clear to auscultation bilaterally",
    "blood pressure is well controlled on lisinopril",
    "follow up in clinic in six weeks",
    "skin exam shows no rash",
    "abdomen is soft and non tender",
]
SUBJECTS = ["The patient", "Mr Smith", "Mrs Jones", "She", "He", "The veteran", "Ms Lee", "Our patient",
            "The resident", "Mr Brown", "The client", "This woman"]


def toy_records(per_category: int = 8, n_none: int = 16) -> list[dict]:
    records = []
    for cid, phrase in KEYWORDS.items():
        for i in range(per_category):
            records.append({"id": f"{cid}-{i}", "text": f"{SUBJECTS[i % len(SUBJECTS)]} {phrase} (visit {i}).",
                            "labels": [cid]})
    for i in range(n_none):
        phrase = NONE_PHRASES[i % len(NONE_PHRASES)]
        records.append({"id": f"none-{i}", "text": f"{SUBJECTS[i % len(SUBJECTS)]}: {phrase}, note {i}.",
                        "labels": ["none"]})
    # a few multi-label sentences
    records.append({"id": "multi-0", "text": "His daughter noticed he keeps forgetting recent conversations.",
                    "labels": ["notice_by_others", "cognitive_impairment"]})
    records.append({"id": "multi-1", "text": "She needs help with bathing and was started on donepezil.",
                    "labels": ["requiring_assistance", "treatment_and_care"]})
    return records


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_synthetic(folder: Path, source: str, records: list[dict]) -> Path:
    texts = [r["text"] for r in records]
    frame = core_frame([text_row_id(t) for t in texts], source, texts, [r["labels"] for r in records])
    write_parquet_atomic(frame, folder / "part-00000.parquet")
    return folder


@pytest.fixture
def toy_gold_file(tmp_path) -> Path:
    return write_jsonl(tmp_path / "gold.jsonl", toy_records())


SCALE_OUT_SENTENCES = [
    "She keeps forgetting where she parked the car.",
    "MoCA today was 19/30.",
    "Lungs are clear to auscultation.",
    "Her daughter now manages all of her medications.",
    "He was started on donepezil 5 mg nightly.",
    "MRI of the brain shows hippocampal atrophy.",
    "She gets lost driving to familiar places.",
    "No rash or edema.",
    "He is agitated and sees people who are not there at night.",
    "Follow up in six weeks.",
    "Her husband says she repeats the same questions.",
    "Blood pressure is well controlled.",
]


@dataclass
class LabelReference:
    """`bin/generate label` on a small note with the real vLLM engine, run once plainly (`run`); the
    scale-out tests rerun it with their flags and compare rows."""

    notes: Path
    run: Path
    sentences: list[str]
    # Cheap and deterministic: greedy, eager start, short context, one sequence at a time per engine (so
    # no path's batch composition can tip a near-tie in bf16 arithmetic).
    common: tuple = ("--temperature", "0", "--enforce-eager", "--no-prefix-caching", "--max-model-len", "1536", "--batch-size", "1",
                     "--max-tokens", "96")

    def generate(self, *args, env: dict | None = None) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "bin" / "generate"), "label", "--notes", str(self.notes),
                   *self.common, *map(str, args)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        return result


@pytest.fixture(scope="session")
def vllm_single_label_run(tmp_path_factory) -> LabelReference:
    folder = tmp_path_factory.mktemp("vllm-reference")
    (folder / "notes").mkdir()
    (folder / "notes" / "n1.txt").write_text("\n".join(SCALE_OUT_SENTENCES), encoding="utf-8")
    reference = LabelReference(notes=folder / "notes", run=folder / "single", sentences=SCALE_OUT_SENTENCES)
    reference.generate("--out", reference.run, env=same_threads_as_one_of(2))
    return reference


def same_threads_as_one_of(workers: int) -> dict[str, str]:
    """Environment for a single-engine reference run that computes with as many threads as each of
    `workers` scale-out engines on this machine: a kernel that sums over 2 threads rounds differently from
    one that sums over 1, and that alone flipped 2 of the 12 greedy label sets of these tests (measured)."""
    cores = sorted(os.sched_getaffinity(0))
    mine = cores[: max(1, len(cores) // workers)]
    return {**os.environ, "VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, mine))}


@pytest.fixture
def ray_session():
    """Ray's settings go into os.environ; put them back so later tests see the usual environment."""
    saved = dict(os.environ)
    yield
    from factory.engines.ray_pool import stop_ray

    stop_ray()
    os.environ.clear()
    os.environ.update(saved)
