"""`--model`: a catalogue name, a local Hugging Face folder or the default; the folder's hash (cached by file
stamps), what the manifest records of it, and one clear error per kind of wrong folder."""

from __future__ import annotations

import json
import os

import pytest

from factory.core.errors import FactoryError
from factory.engines.catalogue import SOURCE_FILE, load_catalogue
from factory.engines.model_ref import EMBEDDED_NAME, ModelRef, check_model_folder, model_hash, resolve_model


def test_model_names_resolve_and_unprepared_ones_say_how(tmp_path, monkeypatch):
    ref = resolve_model(EMBEDDED_NAME)
    assert ref.name == EMBEDDED_NAME and ref.source_sha256 == load_catalogue().get(EMBEDDED_NAME).sha256
    assert resolve_model(None).name == EMBEDDED_NAME  # FACTORY_MODEL (tests/conftest.py)
    assert resolve_model(ref.path).name == EMBEDDED_NAME  # the folder says where it came from
    with pytest.raises(FactoryError, match="prepare-model qwen2.5-coder-1.5b-instruct"):
        resolve_model("qwen2.5-coder-1.5b-instruct", models_dir=tmp_path)
    with pytest.raises(FactoryError, match="not a chat model"):
        resolve_model("all-mpnet-base-v2", models_dir=tmp_path)


def _model_folder(path):
    path.mkdir(parents=True)
    (path / "config.json").write_text('{"model_type": "llama"}')
    (path / "model.safetensors").write_bytes(b"weights")
    (path / "tokenizer.json").write_text("{}")
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: p, "model folder not found"),
    (lambda p: p.write_text("x") and p, "got a file"),
    (lambda p: p.mkdir() or p, "no config.json"),
    (lambda p: p.mkdir() or (p / "config.json").write_text("{}") and p, r"no model weights \(\*.safetensors or \*.bin\)"),
])
def test_each_wrong_folder_is_one_error(tmp_path, make, message):
    with pytest.raises(FactoryError, match=message):
        check_model_folder(make(tmp_path / "model"))


def test_a_local_folder_is_its_own_model_with_no_catalogue_name(tmp_path):
    folder = _model_folder(tmp_path / "mine")
    ref = resolve_model(str(folder))
    assert ref == ModelRef(path=folder.resolve(), hash=model_hash(folder), embedded=False)
    assert ref.lineage() == {"model_name": None}
    # a folder prepare-model made says where it came from, and the manifest records it
    (folder / SOURCE_FILE).write_text(json.dumps({"name": "some-model", "sha256": "ab" * 32}))
    ref = resolve_model(folder)
    assert ref.lineage() == {"model_name": "some-model", "model_source_sha256": "ab" * 32}
    assert ref.hash == model_hash(folder)  # SOURCE.json is not part of the model


def test_the_hash_covers_weights_config_and_tokenizer_and_is_cached_by_stamp(tmp_path, monkeypatch):
    folder = _model_folder(tmp_path / "m")
    first = model_hash(folder)
    assert len(first) == 64 and (folder / ".factory-hash.json").is_file()
    (folder / "notes.md").write_text("not part of the model")
    assert model_hash(folder) == first
    # a second call reads the cache: no file is hashed again
    import factory.engines.model_ref as model_ref

    monkeypatch.setattr(model_ref, "sha256_file", lambda path: pytest.fail(f"hashed {path} again"))
    assert model_hash(folder) == first
    monkeypatch.undo()
    for name, data in (("model.safetensors", b"other weights"), ("tokenizer.json", '{"x": 1}'.encode()),
                       ("config.json", b'{"model_type": "mistral"}')):
        before = model_hash(folder)
        (folder / name).write_bytes(data)
        os.utime(folder / name, ns=(1, 1))  # a stamp unlike the cached one, whatever the clock's resolution
        assert model_hash(folder) != before, name


def test_a_read_only_folder_is_hashed_without_a_cache(tmp_path, monkeypatch):
    folder = _model_folder(tmp_path / "m")
    real_write = type(folder).write_text

    def refuse(path, *args, **kwargs):
        if path.name == ".factory-hash.json":
            raise PermissionError(13, "read-only file system")
        return real_write(path, *args, **kwargs)

    monkeypatch.setattr(type(folder), "write_text", refuse)
    assert model_hash(folder) == model_hash(folder) and not (folder / ".factory-hash.json").exists()


def test_a_name_that_is_also_a_folder_here_is_the_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _model_folder(tmp_path / EMBEDDED_NAME)
    ref = resolve_model(EMBEDDED_NAME)
    assert ref.path == (tmp_path / EMBEDDED_NAME).resolve() and ref.name is None and not ref.embedded
