"""The context of an LLM stage: per-request seeds, the engine started on first use and stopped (or closed)
with the stage, the prompt-fit check, identity and lineage, and the scratch context for measuring on gold."""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path

import pytest

from factory.core.errors import FactoryError
from factory.engines.base import Request, Result, Sampling
from factory.engines.trivial import TrivialEngine
from factory.stages.context import StageStats, request_seed, scratch_context


def test_an_interrupt_stops_the_engine_at_once_and_a_normal_end_closes_it(make_context):
    """Ctrl-C or SIGTERM inside a stage: the context asks its engine to stop now (drop work in flight, kill rather
    than wait; a service manager gives a few seconds), where a finished stage closes it gracefully."""

    class Recording(TrivialEngine):
        def __init__(self):
            super().__init__()
            self.ended: list[str] = []

        def close(self):
            self.ended.append("close")

        def stop_now(self):
            self.ended.append("stop_now")

    for interrupt, expected in ((False, ["close"]), (True, ["stop_now"])):
        engine = Recording()
        ctx = make_context(engine)
        with pytest.raises(KeyboardInterrupt) if interrupt else contextlib.nullcontext():
            with ctx:
                _ = ctx.engine
                if interrupt:
                    raise KeyboardInterrupt
        assert engine.ended == expected
        ctx.run._lock.close()


def test_request_seeds_are_stable_and_differ_by_key_and_run_seed():
    # the same in any process, batch or rerun: run folders written earlier resume on these seeds
    assert request_seed(0, "a") == int(hashlib.sha256(b"0:a").hexdigest()[:8], 16) == 2649998842
    assert len({request_seed(0, "a"), request_seed(0, "b"), request_seed(1, "a")}) == 3
    assert all(0 <= request_seed(s, str(k)) < 2 ** 32 for s in range(3) for k in range(50))


class Workers(TrivialEngine):
    def __init__(self):
        super().__init__()
        self.closed = 0

    def workers_used(self):
        return ["replica-0", "replica-1"]

    def close(self):
        self.closed += 1


def test_the_engine_starts_on_first_use_only_and_its_workers_outlive_it(make_context):
    started = []

    def factory():
        started.append(Workers())
        return started[-1]

    ctx = make_context(None)
    ctx.engine_factory = factory
    assert started == [] and ctx.engine_workers() == []
    assert ctx.start_engine() >= 0 and ctx.engine is ctx.engine and len(started) == 1
    ctx.close()
    assert started[0].closed == 1 and ctx.engine_workers() == ["replica-0", "replica-1"]  # kept for the manifest
    assert ctx.manifest_info()["workers_used"] == ["replica-0", "replica-1"]
    ctx.close()  # a second close does nothing
    assert started[0].closed == 1
    ctx.run.close()


def _chat(words: int) -> list[dict]:
    return [{"role": "user", "content": " ".join(["word"] * words)}]


def test_a_prompt_that_cannot_fit_names_the_setting_to_raise(make_context):
    ctx = make_context(TrivialEngine())
    ctx.prompt_tokens = lambda chat: len(chat[0]["content"].split())
    ctx.max_model_len = 100
    fits = [Request(_chat(30), 0), Request(_chat(36), 1)]
    ctx.check_prompts_fit(fits, Sampling(max_tokens=64), "label")  # 36 + 64 = 100: fits
    with pytest.raises(FactoryError, match=r"the label prompt is 37 tokens and may take 64 more, over --max-model-len "
                                           r"100: raise --max-model-len to at least 101"):
        ctx.check_prompts_fit([*fits, Request(_chat(37), 2)], Sampling(max_tokens=64), "label")
    ctx.max_model_len = None  # no known limit: nothing to check
    ctx.check_prompts_fit([Request(_chat(10_000), 0)], Sampling(max_tokens=64), "label")
    ctx.run.close()


def test_identity_lineage_and_manifest_name_the_model_prompt_and_sampling(make_context):
    sampling = Sampling(temperature=0.7, max_tokens=32)
    ctx = make_context(TrivialEngine(), seed=5, sampling=sampling)
    identity = ctx.identity("p" * 64, "s" * 64, "t" * 64)
    assert identity == {"model_hash": "f" * 64, "prompt_hash": "p" * 64, "schema_hash": "s" * 64,
                        "taxonomy_hash": "t" * 64, "sampling": sampling.to_json(), "seed": 5}
    result = Result(parsed={}, raw="{}", finish_reason="stop", prompt_tokens=11, completion_tokens=3, attempts=2)
    row = ctx.lineage("p", "s", "t", seed=123, result=result)
    assert row["run_id"] == ctx.run.run_id and row["engine"] == "fake" and row["seed"] == 123
    assert (row["prompt_tokens"], row["completion_tokens"], row["attempts"], row["finish_reason"]) == (11, 3, 2, "stop")
    summary = ctx.lineage("p", "s", "t", seed=123, result=None)  # a row summing up several answers
    assert "attempts" not in summary and "finish_reason" not in summary and summary["created_at"] is not None
    info = ctx.manifest_info()
    assert info["model_hash"] == "f" * 64 and json.loads(info["sampling"])["temperature"] == 0.7
    assert "workers_used" not in info  # a single engine names no replicas
    ctx.run.close()


def test_a_scratch_context_shares_the_engine_and_leaves_no_folder(make_context):
    engine = Workers()
    ctx = make_context(engine, seed=3)
    with scratch_context(ctx) as scratch:
        folder = Path(scratch.run.out)
        assert folder != ctx.run.out and folder.is_dir()
        assert scratch.engine is ctx.engine and scratch.seed == 3 and scratch.model == ctx.model
    assert not folder.exists() and engine.closed == 0  # ctx closes its own engine, later
    with scratch_context(None) as bare:
        with pytest.raises(FactoryError, match="asks no LLM"):
            _ = bare.engine
    ctx.close()
    ctx.run.close()


def test_stage_stats_summary_and_manifest():
    stats = StageStats("silver", rows=10, failed=1, requests=11, completion_tokens=200, seconds=4.0,
                       engine_start_seconds=2.345, short={"impaired_cognition": 2})
    assert stats.summary("out/silver")["rows/s"] == 2.5 and stats.summary("x")["engine start s"] == 2.3
    assert StageStats("x").summary("x")["rows/s"] == 0.0  # nothing ran: no division by zero
    info = stats.manifest_info()
    assert info["engine_start_seconds"] == 2.35 and info["short_categories"] == {"impaired_cognition": 2}
    assert "short_categories" not in StageStats("x").manifest_info()
