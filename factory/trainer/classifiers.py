"""Classifiers behind one small interface: fit(texts, targets, sample_weight) / predict_proba(texts) /
save(folder) / load_model(folder).

Every model predicts one probability per taxonomy category (the multi-label task: one decision per
category) plus one for `any_category` (the binary task: AD-related vs none), so both tasks are trained
and scored from the same fit.

Families (see /work/shared/reference/trainer-notes.md for the measured times that set these defaults):
- tfidf: word 1-2 + char 3-5 gram TF-IDF, one-vs-rest logistic regression (class_weight="balanced").
- encoder (frozen, default): mean-pooled sentence embeddings from a local HF encoder (all-MiniLM-L6-v2 by
  default), cached per sentence, + the same one-vs-rest logistic regression. Seconds per fit.
- encoder fine-tuned (--finetune): encoder + linear multi-label head, BCE with pos_weight for rare
  categories, dynamic padding. Minutes per fit on 2 cores.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from factory.core.errors import FactoryError
from factory.trainer.calibration import calibrate, calibrate_thresholds
from factory.trainer.metrics import DEFAULT_THRESHOLD, decide
from factory.core.paths import CACHE_DIR
from factory.engines.embedder import (MAX_LENGTH, _batches_by_length, _load_encoder, _mean_pool, _torch,  # noqa: F401
                                      encoder_fingerprint, resolve_encoder, shared_embedder)

BINARY_OUTPUT = "any_category"
LR_C = 4.0
META_FILE = "meta.json"
CALIBRATORS_FILE = "calibrators.joblib"


def output_names(category_ids: list[str]) -> list[str]:
    return [*category_ids, BINARY_OUTPUT]


def target_matrix(labels: list[list[str]], category_ids: list[str]) -> np.ndarray:
    """(n, K+1) 0/1 matrix: one column per category, last column = any category present."""
    index = {cid: j for j, cid in enumerate(category_ids)}
    y = np.zeros((len(labels), len(category_ids) + 1), dtype=np.int8)
    for i, row in enumerate(labels):
        for label in row:
            if label in index:
                y[i, index[label]] = 1
    y[:, -1] = y[:, :-1].max(axis=1) if category_ids else 0
    return y


# ---------------------------------------------------------------------------------------------- heads


class OneVsRestLogistic:
    """One balanced logistic regression per output column.

    A column with a single class (a category missing from, say, a bronze-only set) predicts that constant
    instead of failing, so every training set can be compared on all categories.
    """

    def __init__(self, seed: int = 0, c: float = LR_C):
        self.seed, self.c = seed, c
        self.estimators: list = []

    def fit(self, x, y: np.ndarray, sample_weight: np.ndarray | None = None) -> "OneVsRestLogistic":
        from sklearn.linear_model import LogisticRegression

        self.estimators = []
        for j in range(y.shape[1]):
            column = y[:, j]
            if column.min() == column.max():
                self.estimators.append(float(column[0]))
                continue
            # The dual problem is the fast one when features outnumber rows (TF-IDF: ~13x faster); the
            # L2-regularised optimum is the same either way.
            model = LogisticRegression(C=self.c, class_weight="balanced", solver="liblinear", max_iter=2000,
                                       dual=x.shape[1] > x.shape[0], random_state=self.seed)
            self.estimators.append(model.fit(x, column, sample_weight=sample_weight))
        return self

    def predict_proba(self, x) -> np.ndarray:
        n = x.shape[0]
        columns = [np.full(n, e) if isinstance(e, float) else e.predict_proba(x)[:, 1] for e in self.estimators]
        return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------------------------- models


class BaseModel:
    kind = "base"

    def __init__(self, outputs: list[str], seed: int = 0):
        self.outputs = list(outputs)
        self.seed = seed
        # One decision threshold for every output, or one per output (chosen on cross-validation folds of gold
        # train by factory.trainer.selection and saved in meta.json as `thresholds`), on the scale of
        # predict_proba: calibrated probabilities when the model has calibrators.
        self.threshold: float | np.ndarray = DEFAULT_THRESHOLD
        self.raw_threshold: float | np.ndarray = DEFAULT_THRESHOLD  # the same, on the classifier's raw score
        self.calibrators: list | None = None  # per output, fitted on out-of-fold CV scores (calibration.py)
        self.max_labels: int | None = None  # tuned decisions keep at most this many categories per sentence
        self.progress = None  # optional rich Progress for long loops

    def raw_proba(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, texts: list[str]) -> np.ndarray:
        """One probability per output: the classifier's score, calibrated when the model has calibrators."""
        return calibrate(self.calibrators, self.raw_proba(texts))

    def set_decision(self, raw_threshold: float | np.ndarray, calibrators: list | None = None,
                     max_labels: int | None = None) -> None:
        """Thresholds on the classifier's raw score, moved to the calibrated scale with the calibrators (each
        map is increasing, so the decisions stay the same and score >= threshold holds on what is shown)."""
        self.calibrators = calibrators or None
        raw = np.broadcast_to(np.asarray(raw_threshold, dtype=float), (len(self.outputs),)).copy()
        self.raw_threshold = raw_threshold
        self.threshold = calibrate_thresholds(self.calibrators, raw) if self.calibrators else raw_threshold
        self.max_labels = max_labels

    def decide(self, probs: np.ndarray) -> np.ndarray:
        return decide(probs, self.threshold, self.max_labels)

    def thresholds(self) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.threshold, dtype=float), (len(self.outputs),)).copy()

    def _meta(self) -> dict:
        meta = {"kind": self.kind, "outputs": self.outputs, "seed": self.seed, "max_labels": self.max_labels,
                "calibrated": self.calibrators is not None}
        if self.calibrators is not None:
            raw = np.broadcast_to(np.asarray(self.raw_threshold, dtype=float), (len(self.outputs),))
            meta["raw_thresholds"] = {name: round(float(t), 4) for name, t in zip(self.outputs, raw)}
        if np.ndim(self.threshold) == 0:
            return {**meta, "threshold": float(self.threshold)}
        # Full precision: a rounded calibrated threshold could flip a decision for a score next to it.
        return {**meta, "threshold": DEFAULT_THRESHOLD,
                "thresholds": {name: float(t) for name, t in zip(self.outputs, self.thresholds())}}

    def save(self, folder: Path, extra_meta: dict | None = None) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._save_weights(folder)
        self._save_calibrators(folder)
        meta = {**self._meta(), **(extra_meta or {})}
        tmp = folder / f".{META_FILE}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, folder / META_FILE)
        return folder

    def _save_calibrators(self, folder: Path) -> None:
        import joblib

        target = folder / CALIBRATORS_FILE
        if self.calibrators is None:
            target.unlink(missing_ok=True)
        else:
            joblib.dump(self.calibrators, target)

    def _save_weights(self, folder: Path) -> None:
        raise NotImplementedError


def tfidf_features():
    """Word 1-2 + char 3-5 gram TF-IDF (unfitted): the TF-IDF family's features."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion([
        ("word", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
        ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True)),
    ])


class TfidfModel(BaseModel):
    kind = "tfidf"

    def fit(self, texts: list[str], y: np.ndarray, sample_weight: np.ndarray | None = None) -> "TfidfModel":
        self.features = tfidf_features()
        x = self.features.fit_transform(texts)
        self.head = OneVsRestLogistic(self.seed).fit(x, y, sample_weight)
        return self

    def raw_proba(self, texts: list[str]) -> np.ndarray:
        return self.head.predict_proba(self.features.transform(texts))

    def _save_weights(self, folder: Path) -> None:
        import joblib

        joblib.dump({"features": self.features, "head": self.head}, folder / "model.joblib")

    @classmethod
    def load(cls, folder: Path, meta: dict) -> "TfidfModel":
        import joblib

        model = cls(meta["outputs"], meta["seed"])
        model.features, model.head = read_saved(folder / "model.joblib", lambda p: _items(joblib.load(p), "features", "head"))
        return model


class FrozenEncoderModel(BaseModel):
    kind = "encoder"

    def __init__(self, outputs, seed=0, encoder_path=None, cache_dir: Path | None = CACHE_DIR):
        super().__init__(outputs, seed)
        self.embedder = shared_embedder(encoder_path, cache_dir)

    def fit(self, texts, y, sample_weight=None) -> "FrozenEncoderModel":
        self.head = OneVsRestLogistic(self.seed).fit(self.embedder.embed(texts, self.progress), y, sample_weight)
        return self

    def raw_proba(self, texts) -> np.ndarray:
        return self.head.predict_proba(self.embedder.embed(texts, self.progress))

    def _meta(self) -> dict:
        # The encoder is referenced, not copied (90 MB); load checks it is still the same encoder.
        return {**super()._meta(), "encoder_path": str(self.embedder.path), "encoder_hash": self.embedder.fingerprint}

    def _save_weights(self, folder: Path) -> None:
        import joblib

        joblib.dump({"head": self.head}, folder / "head.joblib")

    @classmethod
    def load(cls, folder: Path, meta: dict, cache_dir: Path | None = CACHE_DIR) -> "FrozenEncoderModel":
        import joblib

        path = Path(meta["encoder_path"])
        if not (path / "config.json").is_file():
            raise FactoryError(f"the model in {folder} needs its encoder at {path}, which is missing")
        if encoder_fingerprint(path) != meta["encoder_hash"]:
            raise FactoryError(f"the encoder at {path} changed since the model in {folder} was trained")
        model = cls(meta["outputs"], meta["seed"], path, cache_dir)
        (model.head,) = read_saved(folder / "head.joblib", lambda p: _items(joblib.load(p), "head"))
        return model


class FineTunedEncoderModel(BaseModel):
    """Full fine-tuning: encoder + dropout + linear head on mean-pooled tokens, multi-label BCE."""

    kind = "encoder-finetuned"

    def __init__(self, outputs, seed=0, encoder_path=None, epochs: int = 3, batch_size: int = 16,
                 encoder_lr: float = 5e-5, head_lr: float = 3e-3, max_pos_weight: float = 20.0):
        super().__init__(outputs, seed)
        self.encoder_path = resolve_encoder(encoder_path)
        self.epochs, self.batch_size = epochs, batch_size
        self.encoder_lr, self.head_lr, self.max_pos_weight = encoder_lr, head_lr, max_pos_weight

    def _build(self, encoder_path: Path):
        torch = _torch()
        self.tokenizer, self.encoder = _load_encoder(encoder_path)
        self.dropout = torch.nn.Dropout(0.1)
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(self.outputs))

    def _logits(self, texts: list[str]):
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        pooled = _mean_pool(self.encoder(**enc).last_hidden_state, enc["attention_mask"])
        return self.head(self.dropout(pooled))

    def fit(self, texts, y, sample_weight=None) -> "FineTunedEncoderModel":
        torch = _torch()
        from transformers import get_linear_schedule_with_warmup

        torch.manual_seed(self.seed)
        np.random.seed(self.seed)
        self._build(self.encoder_path)
        targets = torch.tensor(np.asarray(y), dtype=torch.float32)
        weights = torch.tensor(np.ones(len(texts)) if sample_weight is None else sample_weight, dtype=torch.float32)
        positives = targets.sum(0)
        # Rare categories: weigh their positives by neg/pos (bounded), so the head does not learn "always 0".
        pos_weight = ((len(texts) - positives) / positives.clamp(min=1)).clamp(1.0, self.max_pos_weight)
        loss_fn = torch.nn.BCEWithLogitsLoss(reduction="none", pos_weight=pos_weight)
        optimizer = torch.optim.AdamW([
            {"params": self.encoder.parameters(), "lr": self.encoder_lr},
            {"params": self.head.parameters(), "lr": self.head_lr},
        ], weight_decay=0.01)
        steps = self.epochs * int(np.ceil(len(texts) / self.batch_size))
        scheduler = get_linear_schedule_with_warmup(optimizer, int(0.1 * steps), steps)
        generator = torch.Generator().manual_seed(self.seed)
        task = self.progress.add_task("fine-tuning", total=steps) if self.progress else None
        self.encoder.train()
        for _ in range(self.epochs):
            for batch in torch.randperm(len(texts), generator=generator).split(self.batch_size):
                idx = batch.tolist()
                per_row = loss_fn(self._logits([texts[i] for i in idx]), targets[idx]).mean(dim=1)
                loss = (per_row * weights[idx]).sum() / weights[idx].sum()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(list(self.encoder.parameters()) + list(self.head.parameters()), 1.0)
                optimizer.step()
                scheduler.step()
                if task is not None:
                    self.progress.advance(task)
        if task is not None:
            self.progress.remove_task(task)
        return self

    def raw_proba(self, texts) -> np.ndarray:
        torch = _torch()
        self.encoder.eval()
        self.dropout.eval()
        out = np.zeros((len(texts), len(self.outputs)), dtype=np.float32)
        with torch.inference_mode():
            for batch in _batches_by_length(texts, 64):
                out[batch] = torch.sigmoid(self._logits([texts[i] for i in batch])).numpy()
        return out

    def _meta(self) -> dict:
        return {**super()._meta(), "base_encoder": str(self.encoder_path), "epochs": self.epochs,
                "batch_size": self.batch_size, "encoder_lr": self.encoder_lr, "head_lr": self.head_lr}

    def _save_weights(self, folder: Path) -> None:
        torch = _torch()
        self.encoder.save_pretrained(folder / "encoder")
        self.tokenizer.save_pretrained(folder / "encoder")
        torch.save(self.head.state_dict(), folder / "head.pt")

    @classmethod
    def load(cls, folder: Path, meta: dict) -> "FineTunedEncoderModel":
        torch = _torch()
        model = cls(meta["outputs"], meta["seed"], folder / "encoder", meta.get("epochs", 3))
        read_saved(folder / "encoder", model._build)
        read_saved(folder / "head.pt", lambda p: model.head.load_state_dict(torch.load(p, weights_only=True)))
        return model


MODEL_FAMILIES = ("tfidf", "encoder")


def build_model(family: str, category_ids: list[str], seed: int, encoder_path: Path | None = None,
                finetune: bool = False, epochs: int = 3, cache_dir: Path | None = CACHE_DIR) -> BaseModel:
    outputs = output_names(category_ids)
    if family == "tfidf":
        return TfidfModel(outputs, seed)
    if family == "encoder":
        if finetune:
            return FineTunedEncoderModel(outputs, seed, encoder_path, epochs=epochs)
        return FrozenEncoderModel(outputs, seed, encoder_path, cache_dir)
    raise FactoryError(f"unknown model family {family!r}; choose from {', '.join(MODEL_FAMILIES)}")


def read_saved(path: Path, load):
    """`load(path)` of one saved model file, or one error line naming it: unpickling a truncated or damaged
    file raises almost any type (EOFError, UnpicklingError, a zlib or KeyError), so everything is caught."""
    if not path.exists():
        raise FactoryError(f"{path.parent} is not a complete saved model: {path.name} is missing; save it again")
    try:
        return load(path)
    except FactoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - see above
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no detail"
        raise FactoryError(f"cannot load {path}: the file is damaged or truncated ({type(exc).__name__}: {reason}); "
                           "save the model again") from None


def _items(parts: object, *keys: str) -> tuple:
    """The named parts of an unpickled model file (a dict as `save` writes it)."""
    if not isinstance(parts, dict) or any(key not in parts for key in keys):
        raise ValueError(f"expected a dict with {', '.join(keys)}, got {type(parts).__name__}")
    return tuple(parts[key] for key in keys)


def load_model(folder: str | Path, cache_dir: Path | None = CACHE_DIR) -> BaseModel:
    folder = Path(folder)
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
        kind = meta["kind"]
    except FileNotFoundError:
        raise FactoryError(f"{folder} is not a saved model (no {META_FILE}); save one with `compare --save-models`") from None
    except (ValueError, KeyError) as exc:
        raise FactoryError(f"{folder / META_FILE} is not valid model metadata ({exc})") from None
    loaders = {TfidfModel.kind: lambda: TfidfModel.load(folder, meta),
               FrozenEncoderModel.kind: lambda: FrozenEncoderModel.load(folder, meta, cache_dir),
               FineTunedEncoderModel.kind: lambda: FineTunedEncoderModel.load(folder, meta)}
    if kind not in loaders:
        raise FactoryError(f"{folder}: unknown model kind {kind!r}")
    try:
        model = loaders[kind]()
    except (KeyError, TypeError) as exc:  # meta.json parsed but lacks what this kind needs
        raise FactoryError(f"{folder / META_FILE} is not valid model metadata ({type(exc).__name__}: {exc})") from None
    model.threshold = saved_thresholds(meta, folder)
    model.calibrators = saved_calibrators(meta, folder)
    raw = meta.get("raw_thresholds")
    model.raw_threshold = np.array([float(raw[o]) for o in meta["outputs"]]) if raw else model.threshold
    model.max_labels = meta.get("max_labels")
    model.meta = meta
    return model


def saved_calibrators(meta: dict, folder: Path) -> list | None:
    """The per-output calibrators saved with the model (None for a model saved without them)."""
    if not meta.get("calibrated"):
        return None
    import joblib

    calibrators = read_saved(folder / CALIBRATORS_FILE, joblib.load)
    if not isinstance(calibrators, list) or len(calibrators) != len(meta["outputs"]):
        raise FactoryError(f"{folder / CALIBRATORS_FILE}: expected one calibrator per output")
    return calibrators


def saved_thresholds(meta: dict, folder: Path) -> float | np.ndarray:
    """Per-output thresholds when the model has them (`thresholds`), else the single `threshold`."""
    default = float(meta.get("threshold", DEFAULT_THRESHOLD))
    per_output = meta.get("thresholds")
    if not per_output:
        return default
    try:
        return np.array([float(per_output.get(name, default)) for name in meta["outputs"]])
    except (AttributeError, TypeError, ValueError) as exc:
        raise FactoryError(f"{folder / META_FILE}: invalid thresholds ({exc})") from None
