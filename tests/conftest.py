"""Shared fixtures: a scripted fake engine behind the real Engine interface, and small inputs."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from factory.offline import force_offline

force_offline()

from factory.engines.base import Engine, RawOutput, Request, Sampling  # noqa: E402
from factory.models import ModelRef  # noqa: E402
from factory.run import Run  # noqa: E402
from factory.stage import StageContext  # noqa: E402
from factory.taxonomy import load_taxonomy  # noqa: E402

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


@pytest.fixture
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
