"""Data-parallel replicas (factory/parallel.py): splitting, per-replica resources, same results as one engine."""

import json

import polars as pl
import pytest

from factory.engines.base import EngineConfig, Request
from factory.engines.trivial import TrivialEngine
from factory.core.errors import FactoryError
from factory.stages.label import Labeler
from factory.engines.pool import ReplicaPool, replica_environment, split_evenly


def test_split_evenly_keeps_order_and_balances():
    assert split_evenly(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_evenly([1], 3) == [[1], [], []]
    assert [x for part in split_evenly(list(range(100)), 8) for x in part] == list(range(100))


def test_each_replica_gets_its_own_cores_or_gpus():
    config = EngineConfig(model_path="m", tensor_parallel_size=2)
    assert replica_environment(0, 2, config, [0, 1, 2, 3], gpus=0)["VLLM_CPU_OMP_THREADS_BIND"] == "0,1"
    assert replica_environment(1, 2, config, [0, 1, 2, 3], gpus=0) == {"VLLM_CPU_OMP_THREADS_BIND": "2,3", "OMP_NUM_THREADS": "2"}
    assert replica_environment(1, 3, config, [0, 1], gpus=0)["VLLM_CPU_OMP_THREADS_BIND"] == "1"  # more replicas than cores
    assert replica_environment(1, 2, config, [0], gpus=4) == {"CUDA_VISIBLE_DEVICES": "2,3"}
    with pytest.raises(FactoryError, match="need 4 GPUs"):
        replica_environment(0, 2, config, [0], gpus=3)


def test_replicas_return_what_one_engine_returns_in_order(taxonomy):
    labeler = Labeler(taxonomy)
    requests = [Request(labeler.chat(f"She forgot appointment {i}."), seed=i) for i in range(9)]
    config = EngineConfig(model_path="unused")
    expected = TrivialEngine(config).generate(requests, labeler.schema, _sampling())
    with ReplicaPool("factory.engines.trivial:TrivialEngine", config, replicas=2) as engine:
        assert engine.generate(requests, labeler.schema, _sampling()) == expected
        assert engine.generate(requests[:1], labeler.schema, _sampling()) == expected[:1]  # a replica may idle
        assert engine.workers_used() == ["replica-0", "replica-1"]


def test_a_replica_that_cannot_start_is_one_clear_error():
    with pytest.raises(FactoryError, match="engine replica failed: ModuleNotFoundError"):
        ReplicaPool("factory.no_such_module:Engine", EngineConfig(model_path="m"), replicas=2)


def _sampling():
    from factory.engines.base import Sampling

    return Sampling(max_tokens=64)


@pytest.mark.engine
def test_two_vllm_replicas_write_the_same_rows_as_one_engine(tmp_path, vllm_single_label_run):
    """bin/generate label --data-parallel-size 2: two vLLM-CPU engines, one core each, against the plain run."""
    reference = vllm_single_label_run
    reference.generate("--out", tmp_path / "dp", "--data-parallel-size", "2")
    columns = ["row_id", "text", "labels", "evidence", "note_id", "sentence_index", "char_start", "char_end",
               "seed", "finish_reason", "completion_tokens", "attempts"]
    replicas = pl.read_parquet(tmp_path / "dp" / "silver").sort("row_id").select(columns)
    single = pl.read_parquet(reference.run / "silver").sort("row_id").select(columns)
    assert replicas.height == single.height > 0
    assert replicas.equals(single)
    manifest = json.loads((tmp_path / "dp" / "manifest.json").read_text())
    assert manifest["stages"]["silver"]["requests"] == len(reference.sentences)
    assert manifest["stages"]["silver"]["workers_used"] == ["replica-0", "replica-1"]
