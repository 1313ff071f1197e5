"""Which synthetic rows to train on, and each output's decision threshold, chosen on gold train only.

The frozen gold test split holds a handful of sentences of each minority category, so nothing is chosen on
it: every choice here is made with K-fold cross-validation over gold train (folds stratified on each row's
rarest label). Per model family (TF-IDF, frozen encoder; features computed once for every row), per fold:

1. a classifier fitted on the fold's gold train part (+ --negatives) is the "gold alone" baseline and the
   scorer: it scores every synthetic row by how well it agrees with the row's labels (the lowest, over the
   categories, of P(category) where the row has it and 1 - P(category) where it has not; for bronze this is
   category fidelity: the intended category is found and no other is strongly predicted). The scorer never
   saw the fold it is judged on (cross-fitted), and never saw a synthetic row;
2. each setting of a small grid per source (minimum agreement, side-table flags: verifier rejects,
   near-duplicates, low self-consistency; a cap ratio; a weight) picks rows and weights; a model trained on
   the fold's gold + those rows is scored on the held-out fold.

A source's setting is the grid setting with the highest mean CV micro-F1, among the settings that lower
neither micro-F1 by more than MICRO_MARGIN nor any category's F1 by more than CATEGORY_MARGIN (means over
folds); "gold alone" is itself a candidate and wins ties, so synthetic data enters only when it raised CV
micro-F1 (the chosen setting may select nothing: the selected set is then gold).

Thresholds: the out-of-fold probabilities of each training set's CV models give one threshold per output
(metrics.choose_thresholds: 0.5 unless the gain beats the fold noise, shrunk toward 0.5 by support), a cap
on categories per sentence (the most a gold train sentence carries) and one calibrator per output
(calibration.py), saved with the model and used by `predict`. CV scores decide each fold at thresholds
chosen on the other folds, so settings are compared as the final models are used. Only the sets run and
their sources reach the CV, and every fit builds its features from its own training rows: the same
training set gives the same model whatever else was loaded.

For the final models the scorer is refitted on all gold train and the chosen settings are applied to the
synthetic rows. The fine-tuned encoder (--finetune) reuses the frozen encoder's selection; its threshold
stays 0.5 (cross-validating fine-tuning is minutes per fit).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from factory.data.rows import SYNTHETIC_SOURCES, Rows, normalise_text
from factory.trainer.classifiers import OneVsRestLogistic, shared_embedder, target_matrix, tfidf_features
from factory.trainer.calibration import calibrate, fit_calibrators
from factory.trainer.metrics import (DEFAULT_THRESHOLD, NOISE_MULTIPLE, SHRINK_POSITIVES, ThresholdChoice,
                                      choose_thresholds, evaluate, expected_calibration_error, max_labels_per_row,
                                      thresholds_of)

N_FOLDS = 5
CV_SEED = 0
MICRO_MARGIN = 0.02
CATEGORY_MARGIN = 0.05
SELECTED_SUFFIX = "-sel"
SELECTION_FAMILIES = ("tfidf", "encoder")


@dataclass(frozen=True)
class Setting:
    """One way of taking a source's rows: a filter, a cap and a weight."""

    name: str
    min_agreement: float | None = None  # the gold classifier's agreement with the row's labels
    side_filter: bool = False  # leave out rows a side table flags
    cap_ratio: float | None = None  # at most cap_ratio x gold train rows, the best-agreeing ones
    weight: float = 1.0
    takes_nothing: bool = False

    def describe(self) -> str:
        if self.takes_nothing:
            return "no rows (gold alone)"
        parts = []
        if self.min_agreement is not None:
            parts.append(f"gold-classifier agreement >= {self.min_agreement:g}")
        if self.side_filter:
            parts.append("rows flagged by side tables left out")
        if self.cap_ratio is not None:
            parts.append(f"at most {self.cap_ratio:g} x gold train")
        parts.append(f"weight {self.weight:g}")
        return ("all rows, " if self.min_agreement is None and not self.side_filter else "") + ", ".join(parts)

    def pick(self, agreement: np.ndarray, side_ok: np.ndarray | None, n_gold: int) -> np.ndarray:
        """Indices (into the source's rows) this setting keeps."""
        if self.takes_nothing:
            return np.zeros(0, dtype=int)
        keep = np.ones(len(agreement), dtype=bool)
        if self.min_agreement is not None:
            keep &= agreement >= self.min_agreement
        if self.side_filter and side_ok is not None:
            keep &= side_ok
        kept = np.flatnonzero(keep)
        if self.cap_ratio is not None and len(kept) > int(self.cap_ratio * n_gold):
            best = np.argsort(-agreement[kept], kind="stable")[: int(self.cap_ratio * n_gold)]
            kept = np.sort(kept[best])
        return kept


GOLD_ALONE = Setting("none", takes_nothing=True)
RAW = Setting("raw")


def settings_grid(has_side_tables: bool) -> list[Setting]:
    # Weights and caps only ever come with a filter: down-weighting every row keeps junk in (at a weight
    # where it does not show on the folds); the raw set itself is the reference point.
    grid = [
        RAW,
        Setting("agree>=0.3", 0.3),
        Setting("agree>=0.3 w0.3", 0.3, weight=0.3),
        Setting("agree>=0.5", 0.5),
        Setting("agree>=0.5 w0.5", 0.5, weight=0.5),
        Setting("agree>=0.7", 0.7),
        Setting("agree>=0.7 w0.5", 0.7, weight=0.5),
        Setting("agree>=0.9", 0.9),
        Setting("agree>=0.7 cap0.5", 0.7, cap_ratio=0.5),
    ]
    if has_side_tables:
        grid += [Setting("flags", side_filter=True), Setting("flags agree>=0.7", 0.7, True),
                 Setting("flags agree>=0.5 w0.5", 0.5, True, weight=0.5)]
    return grid


def agreement_scores(probs: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row: min over categories of P(c) where the row has c, 1 - P(c) where it has not (binary column
    excluded). A 'none' row scores 1 - the strongest category."""
    p, t = probs[:, :-1], y[:, :-1]
    if p.shape[1] == 0:
        return np.ones(len(p))
    return np.where(t == 1, p, 1.0 - p).min(axis=1)


def _pm(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}" if std >= 0.0005 else f"{mean:.3f}"


def fold_ids(labels: list[list[str]], k: int, seed: int = CV_SEED) -> np.ndarray:
    """K folds stratified on each row's rarest label: rows of a label are dealt round-robin over the
    folds, rarest labels first, so every fold holds its share of each minority category."""
    counts = Counter(label for row in labels for label in row)
    rarest = [min(row, key=lambda lab: (counts[lab], lab)) if row else "" for row in labels]
    rng = np.random.default_rng(seed)
    folds = np.zeros(len(labels), dtype=int)
    offset = 0
    for label in sorted(set(rarest), key=lambda lab: (counts.get(lab, 0), lab)):
        members = np.array([i for i, r in enumerate(rarest) if r == label])
        rng.shuffle(members)
        folds[members] = (offset + np.arange(len(members))) % k
        offset += len(members)
    return folds


# ------------------------------------------------------------------------------------------ results


@dataclass
class SettingScore:
    setting: str
    description: str
    rows_kept: float  # mean over folds
    micro_mean: float
    micro_std: float
    delta_micro: float
    worst_category: str
    worst_delta: float
    admissible: bool


@dataclass
class SourceChoice:
    family: str
    source: str
    setting: Setting
    rows_total: int
    rows_kept: int  # applied to the final models (scorer fitted on all gold train)
    reason: str
    scores: list[SettingScore]
    baseline_micro_mean: float
    baseline_micro_std: float

    def to_json(self) -> dict:
        return {"family": self.family, "source": self.source, "setting": self.setting.name,
                "description": self.setting.describe(), "parameters": asdict(self.setting),
                "rows_total": self.rows_total, "rows_kept": self.rows_kept, "reason": self.reason,
                "gold_alone_cv_micro_f1": {"mean": round(self.baseline_micro_mean, 4),
                                           "std": round(self.baseline_micro_std, 4)},
                "grid": [asdict(s) for s in self.scores]}


@dataclass
class CvScore:
    """Cross-validated scores of one training set (means and stds over folds; thresholds cross-fitted), its
    thresholds (and why), and its calibrators with the ECE they leave (cross-fitted over the folds)."""

    micro_mean: float
    micro_std: float
    category_mean: dict[str, float]
    thresholds: list[float]
    choices: list[ThresholdChoice] = field(default_factory=list)
    calibrators: list | None = None
    ece_raw: float | None = None
    ece_calibrated: float | None = None
    oof: np.ndarray | None = None  # out-of-fold scores on gold train (what the thresholds were chosen on)


@dataclass
class Selection:
    folds: int
    categories: list[str]
    choices: dict[tuple[str, str], SourceChoice] = field(default_factory=dict)
    picked: dict[tuple[str, str], tuple[np.ndarray, float]] = field(default_factory=dict)  # final rows, weight
    cv: dict[tuple[str, str], CvScore] = field(default_factory=dict)  # (family, training set)
    seconds: float = 0.0
    enabled: bool = True
    max_labels: int | None = None  # the most categories a gold train sentence carries
    fold_of: np.ndarray | None = None  # each gold train row's fold

    def thresholds(self, family: str, set_name: str) -> np.ndarray | float:
        score = self.cv.get((family, set_name))
        return DEFAULT_THRESHOLD if score is None else np.array(score.thresholds)

    def calibrators(self, family: str, set_name: str) -> list | None:
        score = self.cv.get((family, set_name))
        return None if score is None else score.calibrators

    def to_json(self) -> dict:
        return {
            "chosen_on": f"{self.folds}-fold cross-validation over gold train (the frozen test split chose nothing)",
            "enabled": self.enabled,
            "margins": {"micro_f1": MICRO_MARGIN, "category_f1": CATEGORY_MARGIN},
            "rule": "highest mean CV micro-F1 among settings that lower neither micro-F1 nor any category's F1 by "
                    "more than the margins; gold alone wins ties",
            "threshold_rule": THRESHOLD_RULE,
            "max_labels_per_sentence": self.max_labels,
            "seconds": round(self.seconds, 1),
            "sources": [c.to_json() for c in self.choices.values()],
            "cv": {f"{family}/{set_name}": cv_json(s, self.categories) for (family, set_name), s in self.cv.items()},
        }


THRESHOLD_RULE = (f"0.5 unless the best grid threshold's per-fold F1 gain over 0.5 has a mean above "
                  f"{NOISE_MULTIPLE:g} standard error(s) across folds; a moved threshold is shrunk toward 0.5 by "
                  f"n/(n+{SHRINK_POSITIVES}) (n: positives); at most as many categories per sentence as a gold train "
                  "sentence carries")


def cv_json(score: CvScore, categories: list[str]) -> dict:
    names = [*categories, "any_category"]
    return {"micro_f1_mean": round(score.micro_mean, 4), "micro_f1_std": round(score.micro_std, 4),
            "thresholds": dict(zip(names, score.thresholds)),
            "threshold_choices": {n: c.to_json() for n, c in zip(names, score.choices)},
            "ece_out_of_fold": {"raw": _round(score.ece_raw), "calibrated": _round(score.ece_calibrated)}}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


# --------------------------------------------------------------------------------------------- engine


class _Pool:
    """Every row the CV touches (gold train, negatives, each synthetic source of the sets run).

    Features depend only on the rows a fit trains on, as in the final model: TF-IDF is fitted per fit on
    its training rows (a vocabulary and IDF over every loaded row made the same gold train choose other
    thresholds when unrelated silver or bronze was loaded); encoder embeddings are per sentence, computed
    once."""

    def __init__(self, family: str, gold: Rows, negatives: Rows, synthetic: dict[str, Rows], categories: list[str],
                 encoder, cache_dir, progress=None):
        parts = [("gold", gold), ("negatives", negatives), *synthetic.items()]
        self.index: dict[str, np.ndarray] = {}
        texts: list[str] = []
        labels: list[list[str]] = []
        for name, rows in parts:
            self.index[name] = np.arange(len(texts), len(texts) + len(rows))
            texts += rows.texts
            labels += rows.labels
        self.texts = np.array(texts, dtype=object)
        self.y = target_matrix(labels, categories)
        # A synthetic row equal to a gold train sentence must not train the fold that holds that sentence
        # (the CV twin of the test-leakage rule): copy_of = its gold row, or -1.
        gold_keys = {normalise_text(t): i for i, t in enumerate(gold.texts)}
        self.copy_of = {r: np.array([gold_keys.get(normalise_text(t), -1) for t in synthetic[r].texts], dtype=int)
                        for r in synthetic}
        self.x = None if family == "tfidf" else shared_embedder(encoder, cache_dir).embed(texts, progress)

    def fit(self, rows: np.ndarray, weights: np.ndarray) -> "_Fitted":
        if self.x is not None:
            return _Fitted(self, None, OneVsRestLogistic(CV_SEED).fit(self.x[rows], self.y[rows], weights))
        features = tfidf_features().fit(self.texts[rows].tolist())
        head = OneVsRestLogistic(CV_SEED).fit(features.transform(self.texts[rows].tolist()), self.y[rows], weights)
        return _Fitted(self, features, head)


@dataclass
class _Fitted:
    pool: _Pool
    features: object | None  # the fit's own TF-IDF (None: the pool's embeddings)
    head: OneVsRestLogistic

    def predict_proba(self, rows: np.ndarray) -> np.ndarray:
        x = self.pool.x[rows] if self.features is None else self.features.transform(self.pool.texts[rows].tolist())
        return self.head.predict_proba(x)


def _fold_metrics(y: np.ndarray, oof: np.ndarray, folds: np.ndarray, k: int, cats: list[str],
                  tuned: bool = True, max_labels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(per-fold micro-F1, per-fold x category F1). With `tuned`, each fold is decided as the final model is:
    at thresholds chosen (metrics.choose_thresholds) on the other folds' out-of-fold predictions, with the
    cap on categories per sentence; else at 0.5."""
    micro, per_cat = [], []
    for f in range(k):
        rest = folds != f
        cut = thresholds_of(choose_thresholds(y[rest], oof[rest], folds[rest])) if tuned else DEFAULT_THRESHOLD
        rows = {r["category"]: r["f1"] for r in evaluate(y[~rest], oof[~rest], cats, cut, max_labels if tuned else None)}
        micro.append(rows["micro"])
        per_cat.append([rows[c] for c in cats])
    return np.array(micro), np.array(per_cat)


def cross_fitted_ece(y: np.ndarray, oof: np.ndarray, folds: np.ndarray) -> tuple[float, float]:
    """ECE of the raw out-of-fold scores, and of the same scores calibrated by maps fitted on the other folds
    (a calibrator is never judged on the scores it was fitted on)."""
    calibrated = np.array(oof, dtype=float)
    for f in np.unique(folds):
        rest = folds != f
        calibrated[~rest] = calibrate(fit_calibrators(y[rest], oof[rest]), oof[~rest])
    return expected_calibration_error(y, oof), expected_calibration_error(y, calibrated)


def sets_sources(set_names: list[str], synthetic: dict[str, Rows]) -> dict[str, Rows]:
    """The synthetic sources some set in `set_names` trains on: nothing else reaches the CV."""
    used = {part for name in set_names for part in name.removesuffix(SELECTED_SUFFIX).split("+")}
    return {role: rows for role, rows in synthetic.items() if role in used}


def run_selection(gold: Rows, negatives: Rows, synthetic: dict[str, Rows], side_ok: dict[str, np.ndarray | None],
                  categories: list[str], families: list[str], set_names: list[str], select: bool = True,
                  encoder=None, cache_dir=None, progress=None, k: int = N_FOLDS, tuned: bool = True) -> Selection:
    """Choose per family and source (when `select`), then cross-validate every set in `set_names` (plain
    names like gold+silver, and selected ones ending in SELECTED_SUFFIX) for its thresholds."""
    started = time.perf_counter()
    k = max(2, min(k, len(gold)))
    folds = fold_ids(gold.labels, k)  # drawn over gold train alone: loaded synthetic rows never move them
    synthetic = sets_sources(set_names, synthetic)
    selection = Selection(k, list(categories), enabled=select, max_labels=max_labels_per_row(gold.labels, categories),
                          fold_of=folds)
    task = progress.add_task("choosing on CV folds of gold train", total=None) if progress is not None else None
    for family in families:
        pool = _Pool(family, gold, negatives, synthetic, categories, encoder, cache_dir)
        _select_family(selection, family, pool, folds, synthetic, side_ok, set_names, select, task, progress, tuned)
    if task is not None:
        progress.remove_task(task)
    selection.seconds = time.perf_counter() - started
    return selection


def _select_family(selection: Selection, family: str, pool: _Pool, folds: np.ndarray, synthetic: dict[str, Rows],
                   side_ok: dict[str, np.ndarray | None], set_names: list[str], select: bool, task, progress,
                   tuned: bool) -> None:
    cats, k = selection.categories, selection.folds
    gold_idx, neg_idx = pool.index["gold"], pool.index["negatives"]
    y_gold = pool.y[gold_idx]
    roles = [r for r in synthetic if len(synthetic[r])]  # silver, bronze and compare's clinician-reviewed rows
    grids = {r: settings_grid(side_ok.get(r) is not None) for r in roles}
    oof: dict[tuple, np.ndarray] = {}  # config -> out-of-fold probabilities on gold train
    agreement: dict[tuple[str, int], np.ndarray] = {}  # (role, fold) -> scores from that fold's scorer
    allowed = {(r, f): ~((pool.copy_of[r] >= 0) & (folds[np.maximum(pool.copy_of[r], 0)] == f))
               for r in roles for f in range(k)}

    def fold_pick(setting: Setting, role: str, fold: int, n_gold: int) -> np.ndarray:
        kept = setting.pick(agreement[(role, fold)], side_ok.get(role), n_gold)
        return kept[allowed[(role, fold)][kept]]

    def config_rows(config: tuple, fold: int, n_gold: int):
        """Rows and weights of a config's synthetic part in one fold: config = ((role, Setting), ...)."""
        rows, weights = [], []
        for role, setting in config:
            kept = fold_pick(setting, role, fold, n_gold)
            rows.append(pool.index[role][kept])
            weights.append(np.full(len(kept), setting.weight))
        return (np.concatenate(rows) if rows else np.zeros(0, dtype=int)), (np.concatenate(weights) if weights else np.zeros(0))

    def cross_validate(configs: list[tuple]) -> None:
        """Out-of-fold probabilities for configs that include gold; identical row sets are fitted once."""
        for fold in range(k):
            train = np.concatenate([gold_idx[folds != fold], neg_idx])
            dev = gold_idx[folds == fold]
            memo: dict[tuple, np.ndarray] = {}
            for config in configs:
                if config in oof and fold in oof[config][1]:
                    continue
                extra, weights = config_rows(config, fold, int((folds != fold).sum()))
                key = (tuple(extra), tuple(np.round(weights, 6)))
                if key not in memo:
                    model = pool.fit(np.concatenate([train, extra]), np.concatenate([np.ones(len(train)), weights]))
                    memo[key] = model.predict_proba(dev)
                    if progress is not None:
                        progress.update(task, description=f"choosing on CV folds of gold train ({family}, fold {fold + 1}/{k})")
                store = oof.setdefault(config, (np.zeros(y_gold.shape), set()))
                store[0][folds == fold] = memo[key]
                store[1].add(fold)

    # 1. gold alone per fold: the baseline, and the scorer of every synthetic row.
    for fold in range(k):
        train = np.concatenate([gold_idx[folds != fold], neg_idx])
        scorer = pool.fit(train, np.ones(len(train)))
        oof.setdefault((), (np.zeros(y_gold.shape), set()))
        oof[()][0][folds == fold] = scorer.predict_proba(gold_idx[folds == fold])
        oof[()][1].add(fold)
        for role in roles:
            idx = pool.index[role]
            agreement[(role, fold)] = agreement_scores(scorer.predict_proba(idx), pool.y[idx])
    base_micro, base_cat = _fold_metrics(y_gold, oof[()][0], folds, k, cats, tuned, selection.max_labels)

    # 2. the grid, per source.
    chosen: dict[str, Setting] = {r: RAW for r in roles}
    if select:
        for role in (r for r in roles if r in SYNTHETIC_SOURCES):  # reviewed rows were chosen by clinicians
            configs = [((role, s),) for s in grids[role]]
            cross_validate(configs)
            scores, best, best_micro = [], GOLD_ALONE, base_micro.mean()
            for setting, config in zip(grids[role], configs):
                micro, per_cat = _fold_metrics(y_gold, oof[config][0], folds, k, cats, tuned, selection.max_labels)
                deltas = (per_cat - base_cat).mean(axis=0)
                worst = int(np.argmin(deltas))
                d_micro = float(micro.mean() - base_micro.mean())
                admissible = d_micro >= -MICRO_MARGIN and deltas[worst] >= -CATEGORY_MARGIN
                kept = np.mean([len(fold_pick(setting, role, f, int((folds != f).sum()))) for f in range(k)])
                scores.append(SettingScore(setting.name, setting.describe(), float(kept), float(micro.mean()),
                                           float(micro.std()), d_micro, cats[worst], float(deltas[worst]), admissible))
                if admissible and micro.mean() > best_micro + 1e-9:
                    best, best_micro = setting, micro.mean()
            chosen[role] = best
            winner = next((s for s in scores if s.setting == best.name), None)
            if winner is None:
                refused = [s for s in scores if s.delta_micro > 0]
                reason = ("no setting raised CV micro-F1 over gold alone" if not refused else
                          f"the settings that raised CV micro-F1 lowered a category's F1 by more than {CATEGORY_MARGIN} "
                          f"(e.g. {refused[0].setting}: {refused[0].worst_category} {refused[0].worst_delta:+.3f})")
            else:
                reason = (f"highest CV micro-F1 ({_pm(winner.micro_mean, winner.micro_std)} over folds vs gold "
                          f"alone {_pm(base_micro.mean(), base_micro.std())}); worst category "
                          f"{winner.worst_category} {winner.worst_delta:+.3f}")
            selection.choices[(family, role)] = SourceChoice(family, role, best, len(synthetic[role]), 0, reason, scores,
                                                             float(base_micro.mean()), float(base_micro.std()))

    # 3. the final rows: the scorer refitted on all gold train, the chosen settings applied.
    if roles:
        train = np.concatenate([gold_idx, neg_idx])
        scorer = pool.fit(train, np.ones(len(train)))
        for role in roles:
            idx = pool.index[role]
            scores = agreement_scores(scorer.predict_proba(idx), pool.y[idx])
            kept = chosen[role].pick(scores, side_ok.get(role), len(gold_idx))
            selection.picked[(family, role)] = (kept, chosen[role].weight)
            if (family, role) in selection.choices:
                selection.choices[(family, role)].rows_kept = len(kept)

    # 4. every training set that will be trained: CV scores and thresholds.
    for set_name in set_names:
        base = set_name.removesuffix(SELECTED_SUFFIX)
        parts = base.split("+")
        setting_of = {r: (chosen[r] if set_name.endswith(SELECTED_SUFFIX) else RAW) for r in roles if r in parts}
        if "gold" in parts:
            config = tuple((r, s) for r, s in setting_of.items())
            cross_validate([config])
            probs = oof[config][0]
        else:  # synthetic only: one model, never trained on gold, predicts all of gold train
            extra = np.concatenate([pool.index[r] for r in setting_of]) if setting_of else np.zeros(0, dtype=int)
            if not len(extra):
                continue
            probs = pool.fit(extra, np.ones(len(extra))).predict_proba(gold_idx)
        selection.cv[(family, set_name)] = cv_score(y_gold, probs, folds, k, cats, tuned, selection.max_labels)


def cv_score(y: np.ndarray, probs: np.ndarray, folds: np.ndarray, k: int, cats: list[str], tuned: bool,
             max_labels: int | None) -> CvScore:
    """One training set's CV scores, its thresholds (0.5 when not `tuned`) and its calibrators."""
    micro, per_cat = _fold_metrics(y, probs, folds, k, cats, tuned, max_labels)
    choices = choose_thresholds(y, probs, folds) if tuned else []
    ece_raw, ece_calibrated = cross_fitted_ece(y, probs, folds)
    return CvScore(float(micro.mean()), float(micro.std()), dict(zip(cats, per_cat.mean(axis=0).tolist())),
                   thresholds_of(choices).tolist() if tuned else [DEFAULT_THRESHOLD] * y.shape[1], choices,
                   fit_calibrators(y, probs), ece_raw, ece_calibrated, probs)
