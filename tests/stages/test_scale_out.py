"""Ray for any stage: each LLM stage (label with several strategies, synthesize, check, consistency) on a
pool of two engine actors writes what one engine writes, and a rerun asks the actors for nothing.

The stages' Ray path is the subject here, so the engine is the model-free trivial one. vLLM engines as Ray
actors are checked once, on the strictest stage (sampled synthesis with per-request seeds, through
`bin/generate --ray`): tests/engines/test_ray_pool.py."""

import importlib.util
from dataclasses import replace

import polars as pl
import pytest

if importlib.util.find_spec("ray") is None:
    pytest.skip("the Ray path needs the `ray` extra (make setup installs it)", allow_module_level=True)

from factory.core.paths import CACHE_DIR  # noqa: E402
from factory.data.corpus import iter_notes, iter_sentences  # noqa: E402
from factory.data.rows import Rows  # noqa: E402
from factory.engines.base import EngineConfig, Sampling  # noqa: E402
from factory.engines.ray_pool import RayPool  # noqa: E402
from factory.engines.trivial import TrivialEngine  # noqa: E402
from factory.stages.consistency import run_consistency  # noqa: E402
from factory.stages.label import run_label  # noqa: E402
from factory.stages.strategies import build_strategy  # noqa: E402
from factory.stages.synthesize import run_synthesize  # noqa: E402
from factory.stages.verify import run_check  # noqa: E402
from tests.conftest import toy_records  # noqa: E402

TRIVIAL = "factory.engines.trivial:TrivialEngine"
VOLATILE = ["run_id", "created_at"]  # the only columns allowed to differ between the two runs


def _table(run, folder: str, key: str) -> pl.DataFrame:
    frame = pl.read_parquet(run / folder)
    return frame.drop([c for c in VOLATILE if c in frame.columns]).sort(key)


def _stages(taxonomy, notes_dir, gold):
    sentences = list(iter_sentences(iter_notes(notes_dir)))
    greedy = Sampling(max_tokens=64)
    sampled = Sampling(temperature=0.7, top_p=0.95, max_tokens=64, logprobs=1)
    # (folder, key column, sampling, stage); label runs once per strategy into its own run folder
    for strategy in ("json", "per-category", "embedding+json"):
        yield (f"label-{strategy}", "silver", "row_id", greedy,
               lambda ctx, s=strategy: run_label(sentences, taxonomy, ctx, strategy=build_strategy(s, taxonomy, gold)))
    yield ("label-json", "bronze", "row_id", replace(sampled, logprobs=None),
           lambda ctx: run_synthesize(taxonomy, ctx, per_category=3, per_request=2))
    yield ("label-json", "silver_check", "check_key", greedy, lambda ctx: run_check(ctx.run.out, "silver", taxonomy, ctx))
    yield ("label-json", "bronze_check", "check_key", greedy, lambda ctx: run_check(ctx.run.out, "bronze", taxonomy, ctx))
    yield ("label-json", "silver_consistency", "consistency_key", sampled,
           lambda ctx: run_consistency(ctx.run.out, taxonomy, ctx, samples=3))


def test_every_llm_stage_on_ray_matches_one_engine_and_resumes(tmp_path, taxonomy, notes_dir, make_context, ray_session):
    gold = Rows(texts=[r["text"] for r in toy_records(2, 4)], labels=[r["labels"] for r in toy_records(2, 4)])
    pool = RayPool(TRIVIAL, EngineConfig(model_path="unused"), workers=2)
    contexts: dict[tuple[str, str], object] = {}

    def context(kind: str, folder: str, sampling: Sampling):
        if (kind, folder) not in contexts:
            engine = TrivialEngine() if kind == "single" else pool
            contexts[kind, folder] = make_context(engine, out=tmp_path / kind / folder)
        ctx = contexts[kind, folder]
        ctx.sampling = sampling
        return ctx

    try:
        for folder, table, key, sampling, stage in _stages(taxonomy, notes_dir, gold):
            single = stage(context("single", folder, sampling))
            on_ray = stage(context("ray", folder, sampling))
            assert on_ray.rows == single.rows > 0, table
            assert _table(tmp_path / "ray" / folder, table, key).equals(_table(tmp_path / "single" / folder, table, key)), table
            again = stage(context("ray", folder, sampling))
            assert (again.rows, again.requests) == (0, 0), table  # resumed: nothing asked twice
        consistency = pl.read_parquet(tmp_path / "ray" / "label-json" / "silver_consistency")
        assert consistency["logprob_confidence"].is_not_null().all()  # logprobs survive the trip from the actors
        assert len(pool.workers_used()) == 2
    finally:
        pool.close()
    # Ray's own cloud-metadata probe ran inside Ray's processes: refused by the guard, logged, no crash.
    logs = "".join(p.read_text(errors="replace") for p in (CACHE_DIR / "ray" / "session_latest" / "logs").glob("*.err"))
    assert "network egress blocked" in logs and "169.254.169.254" in logs


def test_every_llm_command_takes_the_ray_options():
    """The Ray path above is the one `--ray` selects on every LLM command (`stage_context` builds the RayPool
    for all of them alike; `synthesize --ray` runs it with vLLM in tests/engines/test_ray_pool.py)."""
    from factory.cli.main import main

    for name in ("label", "synthesize", "check", "consistency"):
        flags = {opt for p in main.commands[name].params for opt in p.opts}
        assert {"--ray", "--workers", "--ray-address"} <= flags, name
