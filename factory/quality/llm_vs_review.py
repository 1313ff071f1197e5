"""How good is the LLM: its silver labels against clinicians' review decisions (and gold, where sentences overlap).

From the current review decisions on silver (`<run>/silver_review/`, read through factory.data.reviews):

- **precision per category** of the LLM's labels: of the (row, reviewer) pairs where the LLM gave a category,
  the share where the reviewer's final labels keep it (accepted: all kept; corrected: those in the correction;
  rejected: none);
- **Cohen's kappa** (scikit-learn's `cohen_kappa_score`) between the LLM and the reviewer, per category (has
  it / has it not) and over all categories pooled, and the same between two reviewers of the same row;
- the same precision and kappa against **gold**, for silver sentences that are also gold sentences;
- every number with a **bootstrap 95% interval** (percentiles of BOOTSTRAP resamples of the pairs, seeded);
- the **calibration** of the factory's confidence signals (`consistency` agreement and its `logprob_confidence`;
  the label stage's own `logprob_confidence` on every silver row, so there is a figure without consistency)
  against reviewer acceptance: a reliability curve (PNG) and the expected calibration
  error (ECE, BINS equal-width bins, weighted by the pairs in each).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.reviews import current_decisions, has_reviews
from factory.data.rows import Rows, normalise_text
from factory.data.side_tables import SideTable
from factory.data.store import atomic_write_bytes, atomic_write_json, read_dataset, shard_paths
from factory.data.taxonomy import Taxonomy

BOOTSTRAP = 1000
SEED = 0
BINS = 10
CHART = "reliability.png"
SUMMARY = "llm_vs_review.json"
MARKDOWN = "llm_vs_review.md"
LABEL_CONFIDENCE = "logprob_confidence"  # the silver column the label stage fills from the engine's logprobs


@dataclass
class Pairs:
    """Two label sets per observation: the judged one (LLM, or the first reviewer) and the reference."""

    judged: list[list[str]]
    reference: list[list[str]]

    def __len__(self) -> int:
        return len(self.judged)


def _matrix(labels: list[list[str]], ids: list[str]) -> np.ndarray:
    index = {c: j for j, c in enumerate(ids)}
    out = np.zeros((len(labels), len(ids)), dtype=np.int8)
    for i, row in enumerate(labels):
        for label in row:
            if label in index:
                out[i, index[label]] = 1
    return out


def _kappa(a: np.ndarray, b: np.ndarray) -> float:
    from sklearn.metrics import cohen_kappa_score

    if len(a) == 0:
        return float("nan")
    if np.array_equal(a, b) and len(np.unique(a)) == 1:
        return float("nan")  # one class only, the same for both: chance agreement is 1, kappa undefined
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(cohen_kappa_score(a, b, labels=[0, 1]))


def _interval(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if np.isfinite(v)]
    if len(values) < 10:
        return None, None
    lo, hi = np.percentile(values, [2.5, 97.5])
    return round(float(lo), 4), round(float(hi), 4)


def _estimate(point: float, samples: list[float], n: int) -> dict:
    lo, hi = _interval(samples)
    return {"value": round(point, 4) if np.isfinite(point) else None, "ci95": [lo, hi], "n": int(n)}


def kappa_table(pairs: Pairs, ids: list[str], n_boot: int = BOOTSTRAP, seed: int = SEED) -> dict:
    """{category or "all": {value, ci95, n}}: kappa per category (binary), and pooled over all categories."""
    a, b = _matrix(pairs.judged, ids), _matrix(pairs.reference, ids)
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(pairs), len(pairs)) for _ in range(n_boot)] if len(pairs) else []
    out = {"all": _estimate(_kappa(a.ravel(), b.ravel()), [_kappa(a[d].ravel(), b[d].ravel()) for d in draws],
                            a.size)}
    for j, cid in enumerate(ids):
        out[cid] = _estimate(_kappa(a[:, j], b[:, j]), [_kappa(a[d, j], b[d, j]) for d in draws], len(pairs))
    return out


def precision_table(pairs: Pairs, ids: list[str], n_boot: int = BOOTSTRAP, seed: int = SEED) -> dict:
    """{category: {value, ci95, n}}: of the pairs where the judged labels have the category, the share whose
    reference has it too; categories the LLM never gave are left out."""
    a, b = _matrix(pairs.judged, ids), _matrix(pairs.reference, ids)
    rng = np.random.default_rng(seed)
    out = {}
    for j, cid in [(None, "all"), *enumerate(ids)]:
        hits = (b[a == 1] if j is None else b[a[:, j] == 1, j]).astype(float)
        if not len(hits):
            continue
        samples = [float(hits[rng.integers(0, len(hits), len(hits))].mean()) for _ in range(n_boot)]
        out[cid] = _estimate(float(hits.mean()), samples, len(hits))
    return out


def reliability(confidence: np.ndarray, outcome: np.ndarray, bins: int = BINS) -> dict:
    """Reliability curve and expected calibration error of a confidence in [0, 1] against a 0/1 outcome."""
    confidence, outcome = np.clip(np.asarray(confidence, float), 0, 1), np.asarray(outcome, float)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    curve, ece = [], 0.0
    for k in range(bins):
        mask = which == k
        if not mask.any():
            continue
        conf, rate = float(confidence[mask].mean()), float(outcome[mask].mean())
        curve.append({"bin": [k / bins, (k + 1) / bins], "n": int(mask.sum()), "mean_confidence": round(conf, 4),
                      "accept_rate": round(rate, 4)})
        ece += mask.sum() / len(confidence) * abs(rate - conf)
    return {"n": int(len(confidence)), "ece": round(float(ece), 4), "curve": curve,
            "accept_rate": round(float(outcome.mean()), 4) if len(outcome) else None}


def _reliability_chart(calibration: dict, path: Path) -> Path:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for name, result in calibration.items():
        xs = [p["mean_confidence"] for p in result["curve"]]
        ys = [p["accept_rate"] for p in result["curve"]]
        ax.plot(xs, ys, marker="o", label=f"{name} (ECE {result['ece']:.3f}, n={result['n']})")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence signal (bin mean)")
    ax.set_ylabel("share of reviews that accepted the LLM's labels")
    ax.set_title("Reliability of the factory's confidence signals")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def collect(run_dir: Path, taxonomy: Taxonomy, gold: Rows | None = None, n_boot: int = BOOTSTRAP,
            seed: int = SEED) -> dict | None:
    """Everything above as one dict; None when no silver row of the run has a current review decision."""
    run_dir = Path(run_dir)
    if not has_reviews(run_dir, "silver") or not shard_paths(run_dir / "silver"):
        return None
    silver = read_dataset(run_dir / "silver")
    decisions = current_decisions(run_dir, "silver", rows=silver.select("row_id", "text"))
    if not decisions.height:
        return None
    ids = taxonomy.all_ids
    llm = Pairs([list(x or []) for x in decisions["shown_labels"].to_list()],
                [list(x or []) for x in decisions["final_labels"].to_list()])
    report: dict = {
        "reviews": decisions.height, "rows": decisions["row_id"].n_unique(),
        "reviewers": sorted(set(decisions["reviewer"].to_list())),
        "decisions": dict(sorted(decisions["decision"].value_counts().iter_rows())),
        "bootstrap": {"resamples": n_boot, "seed": seed, "interval": "percentile 2.5-97.5"},
        "llm_vs_reviewer": {"precision": precision_table(llm, ids, n_boot, seed), "kappa": kappa_table(llm, ids, n_boot, seed)},
    }
    # between reviewers: every pair of reviewers who decided on the same row
    first, second = [], []
    for rows in decisions.partition_by("row_id"):
        labels = sorted(zip(rows["reviewer"].to_list(), rows["final_labels"].to_list()))
        for i in range(len(labels)):
            for j in range(i + 1, len(labels)):
                first.append(list(labels[i][1] or []))
                second.append(list(labels[j][1] or []))
    if first:
        report["between_reviewers"] = {"pairs": len(first), "kappa": kappa_table(Pairs(first, second), ids, n_boot, seed)}
    if gold is not None:
        by_text = {normalise_text(t): labels for t, labels in zip(gold.texts, gold.labels)}
        shared = [(list(labels), by_text[normalise_text(text)]) for text, labels in zip(silver["text"].to_list(), silver["labels"].to_list())
                  if normalise_text(text) in by_text]
        if shared:
            pairs = Pairs([p for p, _ in shared], [g for _, g in shared])
            report["llm_vs_gold"] = {"rows": len(shared), "precision": precision_table(pairs, ids, n_boot, seed),
                                     "kappa": kappa_table(pairs, ids, n_boot, seed)}
    # calibration of the confidence signals against acceptance (one point per review)
    accepted = decisions.select("row_id", (pl.col("decision") == "accept").cast(pl.Int8).alias("accepted"))
    signals = SideTable(run_dir, "silver", "consistency").current(silver.select("row_id", "text", "labels"))
    calibration = {}
    if signals is not None and signals.height:
        present = [c for c in ("agreement", "logprob_confidence") if c in signals.columns]
        joined = accepted.join(signals.select("row_id", *present), on="row_id")
        for column in present:
            part = joined.filter(pl.col(column).is_not_null())
            if part.height:
                calibration[column] = reliability(part[column].to_numpy(), part["accepted"].to_numpy())
    calibration.update(_label_confidence_calibration(accepted, silver))
    report["calibration"] = calibration
    return report


def _label_confidence_calibration(accepted: pl.DataFrame, silver: pl.DataFrame) -> dict:
    """The label stage's own confidence (every silver row made with log-probabilities carries it), so a run
    has a calibration figure whether or not consistency ran."""
    if LABEL_CONFIDENCE not in silver.columns:
        return {}
    part = accepted.join(silver.select("row_id", pl.col(LABEL_CONFIDENCE).alias("confidence")), on="row_id")
    part = part.filter(pl.col("confidence").is_not_null())
    if not part.height:
        return {}
    return {"label_logprob_confidence": reliability(part["confidence"].to_numpy(), part["accepted"].to_numpy())}


MIN_DECISIONS_FOR_INTERVAL = 20  # below this a bootstrap interval is mostly the resampling of a handful of rows


def _fmt(estimate: dict) -> str:
    """The value with its interval, or with a plain statement that there are too few decisions for one
    (a 10-decision bootstrap collapses to intervals like [0.00, 0.00] that look like certainty)."""
    value, (lo, hi), n = estimate["value"], estimate["ci95"], estimate.get("n", 0)
    if value is None:
        return "n/a"
    if lo is None or n < MIN_DECISIONS_FOR_INTERVAL or lo == hi:
        return f"{value:.2f} (n={n}: too few decisions for an interval)"
    return f"{value:.2f} [{lo:.2f}, {hi:.2f}]"


def markdown(report: dict, taxonomy: Taxonomy, chart: Path | None) -> str:
    ids = taxonomy.all_ids
    out = ["# How good is the LLM: its silver labels against clinician review", "",
           f"{report['reviews']} reviews of {report['rows']} silver rows by {', '.join(report['reviewers'])} "
           f"({', '.join(f'{k} {v}' for k, v in report['decisions'].items())}). Intervals: bootstrap 95% "
           f"({report['bootstrap']['resamples']} resamples, seed {report['bootstrap']['seed']}).", ""]
    columns = [("llm_vs_reviewer", "LLM vs reviewer"), ("llm_vs_gold", "LLM vs gold"),
               ("between_reviewers", "reviewer vs reviewer")]
    present = [(k, title) for k, title in columns if k in report]
    out += ["| category | LLM precision (reviewer) | " + " | ".join(f"kappa, {t}" for _, t in present) + " |",
            "|---|---|" + "---|" * len(present)]
    for cid in ["all", *ids]:
        precision = report["llm_vs_reviewer"]["precision"].get(cid)
        cells = [_fmt(precision) + f" (n={precision['n']})" if precision else "—"]
        cells += [_fmt(report[k]["kappa"][cid]) for k, _ in present]
        out.append(f"| {cid if cid != 'all' else '**all categories**'} | " + " | ".join(cells) + " |")
    if "llm_vs_gold" in report:
        out += ["", f"Against gold: {report['llm_vs_gold']['rows']} silver sentences are gold sentences too."]
    out += ["", "## Calibration of the confidence signals against reviewer acceptance", ""]
    if report["calibration"]:
        for name, result in report["calibration"].items():
            out.append(f"- `{name}`: expected calibration error {result['ece']:.3f} over {result['n']} reviews "
                       f"(acceptance {result['accept_rate']:.0%})")
        if chart is not None:
            out += ["", f"![reliability curve]({chart.name})"]
    else:
        out.append("- No confidence signal for the reviewed rows: the engine gave no log-probabilities when they "
                   "were labelled, and consistency has not sampled them (`bin/generate consistency --logprobs`).")
    return "\n".join(out) + "\n"


def build(run_dir: Path, taxonomy: Taxonomy, gold: Rows | None, out_dir: Path, n_boot: int = BOOTSTRAP,
          seed: int = SEED) -> tuple[dict | None, list[Path]]:
    """Write llm_vs_review.json / .md and reliability.png into `out_dir`; (None, []) when nobody reviewed."""
    report = collect(run_dir, taxonomy, gold, n_boot, seed)
    if report is None:
        return None, []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chart = _reliability_chart(report["calibration"], out_dir / CHART) if report["calibration"] else None
    atomic_write_json(out_dir / SUMMARY, report)
    atomic_write_bytes(out_dir / MARKDOWN, markdown(report, taxonomy, chart).encode("utf-8"))
    return report, [p for p in (out_dir / MARKDOWN, out_dir / SUMMARY, chart) if p is not None]


def console_lines(report: dict) -> list[str]:
    kappa = report["llm_vs_reviewer"]["kappa"]["all"]
    lines = [f"LLM vs reviewer: Cohen's kappa {_fmt(kappa)} over {report['reviews']} reviews of {report['rows']} "
             "silver rows (all categories; bootstrap 95% interval)"]
    if "between_reviewers" in report:
        lines.append(f"reviewer vs reviewer: kappa {_fmt(report['between_reviewers']['kappa']['all'])} "
                     f"({report['between_reviewers']['pairs']} doubly reviewed rows)")
    if "llm_vs_gold" in report:
        lines.append(f"LLM vs gold: kappa {_fmt(report['llm_vs_gold']['kappa']['all'])} "
                     f"({report['llm_vs_gold']['rows']} silver sentences in gold)")
    for name, result in report["calibration"].items():
        lines.append(f"calibration of {name} against acceptance: ECE {result['ece']:.3f} (n={result['n']})")
    return lines
