"""Engine actors on a private local Ray cluster (factory/engines/ray_pool.py): `synthesize --ray` writes the
same bronze as one engine and resumes exactly once."""

import importlib.util
import json

import polars as pl
import pytest

if importlib.util.find_spec("ray") is None:
    pytest.skip("the Ray path needs the `ray` extra (make setup installs it)", allow_module_level=True)

from factory.engines.base import EngineConfig  # noqa: E402
from factory.engines.ray_pool import RayPool  # noqa: E402
from factory.engines.trivial import TrivialEngine  # noqa: E402
from factory.stages.synthesize import run_synthesize  # noqa: E402

TRIVIAL = "factory.engines.trivial:TrivialEngine"
# What must match; lineage may differ only in run_id, created_at and engine.
BRONZE = ["row_id", "source", "text", "labels", "category", "attributes", "request_key", "request_index", "item_index",
          "model_hash", "prompt_hash", "schema_hash", "taxonomy_hash", "sampling", "seed", "finish_reason",
          "prompt_tokens", "completion_tokens", "attempts"]


def _bronze(run) -> pl.DataFrame:
    frame = pl.read_parquet(run / "bronze")
    return frame.sort("row_id").select(BRONZE)


def test_ray_actors_write_the_same_bronze_as_one_engine_and_resume(tmp_path, taxonomy, make_context, ray_session):
    run_synthesize(taxonomy, make_context(TrivialEngine(), out=tmp_path / "single"), per_category=4, per_request=2)

    engine = RayPool(TRIVIAL, EngineConfig(model_path="unused"), workers=2)
    ctx = make_context(engine, out=tmp_path / "ray")
    stats = run_synthesize(taxonomy, ctx, per_category=4, per_request=2)
    assert stats.rows == 4 * len(taxonomy.all_ids) and stats.failed == 0
    assert len(engine.workers_used()) == 2  # both actors did work
    assert _bronze(tmp_path / "ray").equals(_bronze(tmp_path / "single"))

    again = run_synthesize(taxonomy, ctx, per_category=4, per_request=2)
    assert (again.rows, again.requests) == (0, 0)  # a finished job asks the actors for nothing
    engine.close()


@pytest.mark.engine
def test_vllm_synthesis_on_two_ray_workers_matches_one_engine(tmp_path, vllm_single_synth_run, ray_session):
    """bin/generate synthesize --ray --workers 2: two vLLM-CPU engines against the plain run (the session's
    reference, tests/conftest.py). Sampled, per-request seeds: the strictest of the engine-on-Ray checks (label
    on Ray is checked for every stage with the trivial engine, tests/stages/test_scale_out.py, and greedy
    vLLM labelling on a pool of two engines by tests/engines/test_pool.py)."""
    reference = vllm_single_synth_run
    reference.generate("--out", tmp_path / "ray", "--ray", "--workers", "2")
    single, ray = _bronze(reference.run), _bronze(tmp_path / "ray")
    assert single.height > 0 and ray.equals(single)
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert len(manifest["stages"]["bronze"]["workers_used"]) == 2
