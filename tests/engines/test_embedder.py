"""The sentence encoder: which folder it loads (a path, a catalogue name, MiniLM by default), mean-pooled
unit vectors, the per-sentence disk cache keyed by the encoder's files, and the torch thread count."""

from __future__ import annotations

import os

import numpy as np
import pytest

from factory.core.errors import FactoryError
from factory.engines import embedder as embedder_module
from factory.engines.embedder import (Embedder, _batches_by_length, default_encoder_path, encoder_fingerprint,
                                      resolve_encoder, shared_embedder)
from factory.engines.model_ref import EMBEDDED_NAME


def test_torch_threads_respects_override_and_load(monkeypatch):
    import os

    from factory.engines import embedder as train

    monkeypatch.setenv("FACTORY_TORCH_THREADS", "3")
    assert train.torch_threads() == 3
    monkeypatch.setenv("FACTORY_TORCH_THREADS", "two")
    with pytest.raises(FactoryError, match="FACTORY_TORCH_THREADS"):
        train.torch_threads()
    monkeypatch.delenv("FACTORY_TORCH_THREADS")
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert train.torch_threads() == 2  # idle machine: both cores
    monkeypatch.setattr(os, "getloadavg", lambda: (1.8, 1.0, 1.0))
    assert train.torch_threads() == 1  # another process keeps the cores busy


def test_encoder_names_resolve_through_the_catalogue():
    assert resolve_encoder("all-minilm-l6-v2") == default_encoder_path()
    with pytest.raises(FactoryError, match="not a sentence embedder"):
        resolve_encoder(EMBEDDED_NAME)
    with pytest.raises(FactoryError, match="no model named"):
        resolve_encoder("no-such-encoder")


def _encoder_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"hidden_size": 4}')
    (path / "model.safetensors").write_bytes(b"weights")
    return path


def test_a_folder_is_an_encoder_only_with_a_config(tmp_path):
    assert resolve_encoder(None) == default_encoder_path()
    folder = _encoder_folder(tmp_path / "enc")
    assert resolve_encoder(folder) == folder and resolve_encoder(str(folder)) == folder
    (tmp_path / "empty").mkdir()
    with pytest.raises(FactoryError, match="has no config.json"):
        resolve_encoder(tmp_path / "empty")


def test_the_fingerprint_follows_the_model_files_not_the_readme(tmp_path):
    folder = _encoder_folder(tmp_path / "enc")
    first = encoder_fingerprint(folder)
    (folder / "README.md").write_text("notes")
    assert encoder_fingerprint(folder) == first
    (folder / "model.safetensors").write_bytes(b"other weights")
    assert encoder_fingerprint(folder) != first


class Counting(Embedder):
    """An embedder whose encoder is a stub: vector = (length, 1, 0, 0), normalised; every call recorded."""

    calls: list[list[str]]

    def _encode(self, texts, progress=None):
        self.calls = [*getattr(self, "calls", []), list(texts)]
        vectors = np.array([[len(t), 1.0, 0.0, 0.0] for t in texts], dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_each_sentence_is_encoded_once_and_cached_on_disk(tmp_path):
    folder = _encoder_folder(tmp_path / "enc")
    cache = tmp_path / "cache"
    embedder = Counting(folder, cache)
    vectors = embedder.embed(["a", "bb", "a"])
    assert embedder.calls == [["a", "bb"]]  # a repeated sentence is encoded once
    np.testing.assert_array_equal(vectors[0], vectors[2])
    embedder.embed(["bb", "ccc"])
    assert embedder.calls[-1] == ["ccc"]
    shards = list(cache.glob("embeddings/*/*.npz"))
    assert len(shards) == 2 and not list(cache.glob("embeddings/*/.*"))  # written whole, no temp file left
    assert shards[0].parent.name.startswith(encoder_fingerprint(folder)[:16])
    fresh = Counting(folder, cache)  # another process: answers from the disk cache alone
    np.testing.assert_array_equal(fresh.embed(["a", "ccc"]), embedder.embed(["a", "ccc"]))
    assert getattr(fresh, "calls", []) == []
    assert embedder.embed([]).shape == (0, 0)


def test_without_a_cache_folder_nothing_is_written(tmp_path):
    embedder = Counting(_encoder_folder(tmp_path / "enc"), cache_dir=None)
    embedder.embed(["a"])
    assert embedder.cache_dir is None and sorted(p.name for p in tmp_path.iterdir()) == ["enc"]


def test_batches_group_sentences_of_similar_length():
    texts = ["xxxx", "x", "xxx", "xx", "xxxxx"]
    batches = list(_batches_by_length(texts, 2))
    assert batches == [[1, 3], [2, 0], [4]]
    assert sorted(i for b in batches for i in b) == list(range(len(texts)))


def test_minilm_gives_unit_vectors_that_place_paraphrases_together():
    embedder = shared_embedder(None)  # the suite's one loaded MiniLM
    texts = ["She keeps forgetting where she put her keys.", "She often forgets where her keys are.",
             "The chest X-ray shows no infiltrate."]
    vectors = embedder._encode(texts)  # the encoder itself, not the cache
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    # the same sentence gets the same vector alone or padded in a batch of longer ones
    np.testing.assert_allclose(embedder._encode([texts[2]])[0], vectors[2], atol=1e-5)


def test_one_embedder_per_encoder_and_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(embedder_module, "_EMBEDDERS", {})
    folder = _encoder_folder(tmp_path / "enc")
    assert shared_embedder(folder, tmp_path / "c") is shared_embedder(str(folder), tmp_path / "c")
    assert shared_embedder(folder, tmp_path / "c") is not shared_embedder(folder, tmp_path / "other")
    assert os.path.samefile(shared_embedder(folder, None).path, folder)
