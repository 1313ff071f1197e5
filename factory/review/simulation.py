"""The review loop, measured: does the queue's informative order buy more test F1 per reviewed row than a
random order? (`bin/generate quality simulate-review`)

A simulated clinician reviews the silver queue in batches and answers every row with its gold labels, so it
can only review silver rows whose sentence is a gold *train* sentence, matched by normalised text (a gold row
id is the hash of its normalised text, a silver row id the content key of its place in a note, so the
normalised text is what both share). Those rows are the pool. Their sentences are held back from the
starting training set, or reviewing them would only repeat what the classifier already has: the start is
gold train minus the pool's sentences, and a fully reviewed pool gives all of gold train. A silver row equal to a gold *test* sentence never enters the
pool (the frozen test split is never trained on); a row with no gold sentence cannot be answered and is
counted, not reviewed.

After each batch the classifier behind the review page's why-here line (factory/review/signals.py:
TF-IDF, thresholds 0.5) is refitted on the start plus the reviewed rows with their gold labels and scored
on the gold test split. For the informative order the rest of the pool is then re-ranked by the queue's
own `silver_items` + `informative_order` with that classifier and the run's verifier and consistency side
tables, as the page ranks it; the random order is the queue's seeded shuffle, taken in batches.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from factory.core.errors import FactoryError
from factory.data.gold import load_gold
from factory.data.output_folder import Writer
from factory.data.rows import Rows, normalise_text
from factory.data.split import load_or_create_split
from factory.data.store import atomic_write_json, read_dataset, shard_paths
from factory.data.taxonomy import Taxonomy
from factory.review.queue import ORDERS, Signals, informative_order, random_order, silver_items
from factory.review.signals import CLASSIFIER_FAMILY, Classifier, fit_classifier
from factory.trainer.classifiers import target_matrix
from factory.trainer.compare import MINORITY_COUNT
from factory.trainer.metrics import DEFAULT_THRESHOLD, evaluate

# A report rebuilt from the run: a rerun into the default <run>/review_simulation replaces it.
SIMULATION_WRITER = Writer("quality simulate-review")
DEFAULT_BATCH = 10
SMALL_POOL_BATCHES = 3  # fewer batches than this before the pool runs out: too few points to tell the orders apart
TOLERANCE = 1e-9  # "reaches" an F1: equal up to float noise
METRICS = {"micro_f1": "micro-F1", "minority_f1": "minority F1"}
NO_START = "every gold train sentence is in the review pool"


@dataclass
class Pool:
    """The silver rows the simulated reviewer can answer, and the gold around them."""

    rows: pl.DataFrame  # silver rows with a gold train answer, one per sentence, in the silver folder's order
    answers: dict[str, list[str]]  # row_id -> the gold labels the reviewer gives
    start: Rows  # gold train minus the pool's sentences: what the classifier knows before any review
    test: Rows  # the frozen gold test split
    categories: list[str]  # the categories scored (every taxonomy category but 'none')
    minority: dict[str, int]  # the categories with the fewest gold train sentences -> that count
    counts: dict[str, int]  # silver rows: all, pool, gold_test, no_gold, repeats

    @property
    def size(self) -> int:
        return self.rows.height

    def texts(self, row_ids: list[str]) -> list[str]:
        by_id = dict(zip(self.rows["row_id"], self.rows["text"]))
        return [by_id[r] for r in row_ids]


def _silver(run_dir: Path) -> pl.DataFrame:
    folder = Path(run_dir) / "silver"
    if not shard_paths(folder):
        raise FactoryError(f"no silver shards in {folder}; nothing to review")
    return read_dataset(folder).unique("row_id", keep="first", maintain_order=True)


def minority_categories(train: Rows, taxonomy: Taxonomy) -> dict[str, int]:
    """The MINORITY_COUNT categories with the fewest gold train sentences (ties: taxonomy order), as compare
    picks its minority categories."""
    counts = train.label_counts()
    ids = taxonomy.category_ids
    chosen = sorted(ids, key=lambda c: (counts.get(c, 0), ids.index(c)))[:MINORITY_COUNT]
    return {c: counts.get(c, 0) for c in chosen}


def build_pool(run_dir: Path, gold_dir: Path, taxonomy: Taxonomy) -> Pool:
    """Match the run's silver rows to gold by normalised text; refuse when none can be answered."""
    silver = _silver(run_dir)
    gold = load_gold(gold_dir, taxonomy)
    split = load_or_create_split(gold, gold_dir, taxonomy)  # the review page's classifier uses the same split
    train, test = gold.subset(split.train_indices(gold)), gold.subset(split.test_indices(gold))
    train_answers: dict[str, list[str]] = {}
    for text, labels in zip(train.texts, train.labels):
        train_answers.setdefault(normalise_text(text), list(labels))
    test_texts = {normalise_text(t) for t in test.texts}
    counts = Counter(silver=silver.height)
    keep, answers, taken = [], {}, set()
    for i, (row_id, text) in enumerate(zip(silver["row_id"], silver["text"])):
        key = normalise_text(text)
        if key in test_texts:  # checked first: a test sentence is never trained on, even if train has it too
            counts["gold_test"] += 1
        elif key not in train_answers:
            counts["no_gold"] += 1
        elif key in taken:  # the same sentence twice would count twice once reviewed
            counts["repeats"] += 1
        else:
            taken.add(key)
            keep.append(i)
            answers[row_id] = train_answers[key]
    counts["pool"] = len(keep)
    if not keep:
        raise FactoryError(
            f"none of the {silver.height} silver rows of {run_dir} is a gold train sentence ({counts['gold_test']} "
            f"equal gold test sentences, never trained on; {counts['no_gold']} have no gold sentence): the simulated "
            "reviewer answers with gold labels, so it needs silver made from notes that contain gold train sentences")
    start = train.subset(i for i, t in enumerate(train.texts) if normalise_text(t) not in taken)
    return Pool(silver[keep], answers, start, test, taxonomy.category_ids, minority_categories(train, taxonomy),
                {k: counts[k] for k in ("silver", "pool", "gold_test", "no_gold", "repeats")})


def checkpoints(pool_size: int, batch: int, budget: int | None) -> list[int]:
    """Rows reviewed at each refit: 0, batch, 2 x batch, ..., the end (the budget or the whole pool)."""
    end = pool_size if budget is None else min(budget, pool_size)
    return [*range(0, end, batch), end]


# --------------------------------------------------------------------------------------------- one walk


def _fit(pool: Pool, reviewed: list[str], taxonomy: Taxonomy, seed: int) -> Classifier | None:
    reviewed = sorted(reviewed)  # the same rows fit the same model whichever order reviewed them
    texts = pool.start.texts + pool.texts(reviewed)
    labels = pool.start.labels + [pool.answers[r] for r in reviewed]
    return fit_classifier(texts, labels, taxonomy, seed) if texts else None


def _score(classifier: Classifier | None, pool: Pool, y_test: np.ndarray, taxonomy: Taxonomy) -> dict[str, float]:
    """micro-F1, macro-F1 and minority F1 (the mean F1 of the minority categories) on the gold test split;
    no classifier (nothing to train on yet) predicts no category."""
    if classifier is None:
        probabilities, threshold = np.zeros(y_test.shape), DEFAULT_THRESHOLD
    else:
        probabilities, threshold = classifier.model.predict_proba(pool.test.texts), classifier.model.threshold
    f1 = {(r["scope"], r["category"]): r["f1"] for r in evaluate(y_test, probabilities, taxonomy.category_ids, threshold)}
    return {"micro_f1": f1["micro", "micro"], "macro_f1": f1["macro", "macro"],
            "minority_f1": float(np.mean([f1["category", c] for c in pool.minority]))}


def _informative_next(run_dir: Path, pool: Pool, reviewed: list[str], classifier: Classifier | None,
                      taxonomy: Taxonomy, seed: int, take: int) -> list[str]:
    """The head of the queue the review page would show now: the unreviewed pool, ranked with the latest fit."""
    remaining = pool.rows.filter(~pl.col("row_id").is_in(reviewed))
    signals = Signals(taxonomy, classifier, "" if classifier is not None else NO_START)
    return [item.row_id for item in informative_order(silver_items(run_dir, remaining, signals), taxonomy, seed)[:take]]


def walk(run_dir: Path, pool: Pool, taxonomy: Taxonomy, order: str, seed: int,
         points: list[int]) -> tuple[list[dict], list[str]]:
    """One simulated reviewer: (a curve point per checkpoint, the pool's rows in the order reviewed)."""
    if order not in ORDERS:
        raise FactoryError(f"unknown order {order!r}; known: {', '.join(ORDERS)}")
    y_test = target_matrix(pool.test.labels, taxonomy.category_ids)
    shuffled = ([item.row_id for item in random_order(silver_items(run_dir, pool.rows, Signals(taxonomy)), seed)]
                if order == "random" else [])
    reviewed: list[str] = []
    classifier: Classifier | None = None
    curve = []
    for point in points:
        take = point - len(reviewed)
        if take and order == "random":
            reviewed += shuffled[len(reviewed):point]
        elif take:
            reviewed += _informative_next(run_dir, pool, reviewed, classifier, taxonomy, seed, take)
        classifier = _fit(pool, reviewed, taxonomy, seed)
        curve.append({"rows_reviewed": len(reviewed), "train_rows": len(pool.start) + len(reviewed),
                      **_score(classifier, pool, y_test, taxonomy)})
    return curve, reviewed


# --------------------------------------------------------------------------------------------- all walks


@dataclass
class Simulation:
    run_dir: Path
    gold_dir: Path
    pool: Pool
    batch: int
    budget: int | None
    seeds: list[int]
    points: list[int]
    curve: pl.DataFrame  # order, seed, rows_reviewed, train_rows, micro_f1, macro_f1, minority_f1
    picks: pl.DataFrame  # order, seed, position, batch, row_id, text, gold_labels

    @property
    def summary(self) -> pl.DataFrame:
        """Mean, sample standard deviation (0 for one seed), min and max over seeds, per order and checkpoint."""
        aggregations = [pl.col("train_rows").first()]
        for m in ("micro_f1", "macro_f1", "minority_f1"):
            aggregations += [pl.col(m).mean().alias(f"{m}_mean"), pl.col(m).std().fill_null(0.0).alias(f"{m}_std"),
                             pl.col(m).min().alias(f"{m}_min"), pl.col(m).max().alias(f"{m}_max")]
        return self.curve.group_by("order", "rows_reviewed", maintain_order=True).agg(aggregations)

    def mean(self, order: str, metric: str) -> dict[int, float]:
        part = self.summary.filter(pl.col("order") == order)
        return dict(zip(part["rows_reviewed"].to_list(), part[f"{metric}_mean"].to_list()))

    def rows_to_match(self, metric: str) -> dict[int, int | None]:
        """Per checkpoint: the fewest rows after which informative order's mean reaches random order's mean
        there (None: not within the rows simulated). Batch resolution: only checkpoints are compared."""
        informative, random_ = self.mean("informative", metric), self.mean("random", metric)
        return {point: next((p for p in self.points if informative[p] >= target - TOLERANCE), None)
                for point, target in random_.items()}

    @property
    def interior(self) -> list[int]:
        """The checkpoints where the orders can have reviewed different rows (not none, not the whole pool)."""
        return [p for p in self.points if 0 < p < self.pool.size]

    @property
    def reference_point(self) -> int | None:
        """Where the saving is read: the end of a budget short of the pool; else the checkpoint nearest half the
        pool, where two orders' reviewed rows differ most (at the end both have reviewed all of it). None when
        the pool fits in one batch."""
        if not self.interior:
            return None
        if self.points[-1] < self.pool.size:
            return self.points[-1]
        return min(self.interior, key=lambda p: (abs(p - self.pool.size / 2), p))

    def saving(self, metric: str) -> dict:
        reference = self.reference_point
        informative, random_ = self.mean("informative", metric), self.mean("random", metric)
        tally = {"ahead": sum(informative[p] > random_[p] + TOLERANCE for p in self.interior),
                 "behind": sum(informative[p] < random_[p] - TOLERANCE for p in self.interior),
                 "checkpoints": len(self.interior)}
        if reference is None:
            return {"metric": metric, "reference_rows": None, "target": None, "informative_rows": None,
                    "saved_rows": 0, "random_gains": False, **tally}
        target = random_[reference]
        gains = target > random_[0] + TOLERANCE  # else any order "reaches" it before reviewing anything
        needed = self.rows_to_match(metric)[reference]
        saved = reference - needed if gains and needed is not None and needed < reference else 0
        return {"metric": metric, "reference_rows": reference, "target": target, "informative_rows": needed,
                "saved_rows": saved, "random_gains": gains, **tally}

    def saving_line(self, metric: str) -> str:
        s, name = self.saving(metric), METRICS[metric]
        if s["reference_rows"] is None:
            return (f"saving ({name}): none measurable; the pool's {self.pool.size} rows fit in one batch of "
                    f"{self.batch}, so both orders review the same rows")
        reference, needed = s["reference_rows"], s["informative_rows"]
        tally = (f"; informative ahead at {s['ahead']}, behind at {s['behind']} of the {s['checkpoints']} checkpoints "
                 "before the whole pool")
        if not s["random_gains"]:
            return (f"saving ({name}): none measurable; random order gains nothing by {reference} reviewed rows "
                    f"({s['target']:.3f}, {self.mean('random', metric)[0]:.3f} before review)" + tally)
        head = f"saving ({name}): random order reaches {s['target']:.3f} after {reference} reviewed rows; informative order "
        if needed is None:
            return head + f"does not reach it within the {self.points[-1]} rows simulated: it saves none" + tally
        if needed >= reference:
            return head + f"reaches it after {needed}: it saves none" + tally
        return head + f"reaches it after {needed}: {s['saved_rows']} rows fewer ({s['saved_rows'] / reference:.0%})" + tally

    def pool_line(self) -> str:
        c = self.pool.counts
        return (f"pool: {c['pool']} of {c['silver']} silver rows have a gold train answer ({c['gold_test']} equal gold "
                f"test sentences and are never reviewed, {c['no_gold']} have no gold sentence, {c['repeats']} repeat a "
                f"pool sentence); start: {len(self.pool.start)} gold train sentences outside the pool")

    def small_pool(self) -> bool:
        return len(self.interior) < SMALL_POOL_BATCHES - 1

    def lines(self) -> list[str]:
        """What the command prints: the pool and the two savings."""
        lines = [self.pool_line()]
        if self.small_pool():
            lines.append(f"note: the pool is small ({self.pool.size} rows, batches of {self.batch}): too few checkpoints "
                         "to tell the orders apart")
        return lines + [self.saving_line(m) for m in METRICS]


def simulate(run_dir: Path, gold_dir: Path, pool: Pool, taxonomy: Taxonomy, batch: int = DEFAULT_BATCH,
             budget: int | None = None, seeds: list[int] | None = None, progress=None) -> Simulation:
    """Both orders for every seed; `progress(order, seed)` is told as each walk starts."""
    if batch < 1 or (budget is not None and budget < 1):
        raise FactoryError("--batch and --budget must be at least 1")
    seeds = list(seeds if seeds is not None else [0])
    points = checkpoints(pool.size, batch, budget)
    records, picks = [], []
    for seed in seeds:
        for order in ORDERS:
            if progress is not None:
                progress(order, seed)
            curve, reviewed = walk(run_dir, pool, taxonomy, order, seed, points)
            records += [{"order": order, "seed": seed, **point} for point in curve]
            picks += [{"order": order, "seed": seed, "position": i + 1, "batch": i // batch + 1, "row_id": row_id,
                       "text": text, "gold_labels": "; ".join(pool.answers[row_id])}
                      for i, (row_id, text) in enumerate(zip(reviewed, pool.texts(reviewed)))]
    return Simulation(Path(run_dir), Path(gold_dir), pool, batch, budget, seeds, points, pl.DataFrame(records),
                      pl.DataFrame(picks, schema={"order": pl.String, "seed": pl.Int64, "position": pl.Int64,
                                                  "batch": pl.Int64, "row_id": pl.String, "text": pl.String,
                                                  "gold_labels": pl.String}))


# --------------------------------------------------------------------------------------------- the report


def table(sim: Simulation) -> pl.DataFrame:
    """One row per checkpoint: both orders' mean and spread, and the rows informative order needs to match."""
    summary = sim.summary
    columns: dict[str, list] = {"rows_reviewed": sim.points,
                                "train_rows": [len(sim.pool.start) + p for p in sim.points]}
    for metric in METRICS:
        for order in ORDERS:
            part = summary.filter(pl.col("order") == order).sort("rows_reviewed")
            columns[f"{metric}_{order}_mean"] = part[f"{metric}_mean"].to_list()
            columns[f"{metric}_{order}_std"] = part[f"{metric}_std"].to_list()
        needed = sim.rows_to_match(metric)
        columns[f"{metric}_informative_rows_to_match_random"] = [needed[p] for p in sim.points]
    return pl.DataFrame(columns, schema_overrides={f"{m}_informative_rows_to_match_random": pl.Int64 for m in METRICS})


def _cell(mean: float, std: float) -> str:
    return f"{mean:.3f} ± {std:.3f}"


def markdown(sim: Simulation, chart_name: str) -> str:
    pool, rows = sim.pool, table(sim)
    minority = ", ".join(f"{c} ({n})" for c, n in pool.minority.items())
    end = "the whole pool" if sim.points[-1] == pool.size else f"a budget of {sim.points[-1]} rows"
    out = [f"# Simulated review: informative vs random order ({sim.run_dir})", "",
           "A simulated clinician reviews the silver queue in batches and answers each row with its gold labels; after "
           "each batch the classifier is refitted on the starting gold plus the reviewed rows and scored on the frozen "
           "gold test split, and the informative order re-ranks the rest of the queue with that classifier (and the "
           "run's verifier and consistency tables), as the review page does.", "",
           f"- Pool: {sim.pool_line().split(': ', 1)[1]}. Silver rows are matched to gold by normalised text; only gold "
           "train sentences can be reviewed. Pool sentences are left out of the starting training set, so a fully "
           "reviewed pool gives all of gold train.",
           f"- Classifier: the review page's why-here classifier ({CLASSIFIER_FAMILY}: word 1-2 + char 3-5 gram TF-IDF, "
           "one-vs-rest logistic regression, threshold 0.5), refitted after every batch.",
           f"- Test: the frozen gold test split of {sim.gold_dir} ({len(pool.test)} sentences). micro-F1 over the "
           f"{len(pool.categories)} categories; **minority F1** = the mean test F1 of the "
           f"{len(pool.minority)} categories with the fewest gold train sentences: {minority}.",
           f"- Batches of {sim.batch} rows up to {end}; seeds {', '.join(map(str, sim.seeds))} (random order's shuffle, "
           "tie-breaks within the informative order, the classifier). Cells: mean ± sample standard deviation over "
           "seeds; the chart's bands are the same spread.", ""]
    if sim.small_pool():
        out += [f"**The pool is small** ({pool.size} rows): too few checkpoints to tell the orders apart. Label notes "
                "that contain more gold train sentences for a firmer answer.", ""]
    out += ["## Saving", "", *[f"- {sim.saving_line(m)}." for m in METRICS], "",
            "Read on the mean curves, at batch resolution: the rows after which informative order's mean reaches what "
            "random order's mean reaches at the reference point, the end of `--budget` or else the checkpoint nearest "
            "half the pool (where two orders' reviewed rows differ most; once the whole pool is reviewed both train on "
            "the same rows). The last column of each metric in the table reads it at every checkpoint.", "",
            f"![review simulation]({chart_name})",
            "", "## Curve", "",
            "| rows reviewed | train rows | micro-F1 informative | micro-F1 random | informative rows to match random "
            "micro | minority F1 informative | minority F1 random | informative rows to match random minority |",
            "|---|---|---|---|---|---|---|---|"]
    for r in rows.iter_rows(named=True):
        cells = [str(r["rows_reviewed"]), str(r["train_rows"])]
        for metric in METRICS:
            cells += [_cell(r[f"{metric}_informative_mean"], r[f"{metric}_informative_std"]),
                      _cell(r[f"{metric}_random_mean"], r[f"{metric}_random_std"]),
                      "–" if r[f"{metric}_informative_rows_to_match_random"] is None
                      else str(r[f"{metric}_informative_rows_to_match_random"])]
        out.append("| " + " | ".join(cells) + " |")
    out += ["", "Files: `table.csv` (this table), `curve_by_seed.csv` (every seed's points), `picks.csv` (the rows each "
            "order reviewed, in order), `summary.json`."]
    return "\n".join(out) + "\n"


def chart(sim: Simulation, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = sim.summary
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, (metric, name) in zip(axes, METRICS.items()):
        for order, color in zip(ORDERS, ("C0", "C1")):
            part = summary.filter(pl.col("order") == order).sort("rows_reviewed")
            x = part["rows_reviewed"].to_numpy()
            mean, std = part[f"{metric}_mean"].to_numpy(), part[f"{metric}_std"].to_numpy()
            ax.plot(x, mean, marker="o", markersize=3, color=color, label=f"{order} order")
            ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2)
        if sim.reference_point is not None:  # where the saving is read
            ax.axvline(sim.reference_point, color="grey", linestyle=":", linewidth=1)
        ax.set_xlabel("silver rows reviewed")
        ax.set_ylabel(f"{name} on gold test")
        ax.set_title(name if metric != "minority_f1" else f"{name} ({', '.join(sim.pool.minority)})", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Simulated review, batches of {sim.batch}: mean ± sd over {len(sim.seeds)} seed(s); dotted: where "
                 "the saving is read")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(sim: Simulation, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    files = {"markdown": out_dir / "report.md", "chart": out_dir / "curve.png", "table": out_dir / "table.csv",
             "by_seed": out_dir / "curve_by_seed.csv", "picks": out_dir / "picks.csv",
             "summary": out_dir / "summary.json"}
    chart(sim, files["chart"])
    table(sim).write_csv(files["table"])
    sim.curve.write_csv(files["by_seed"])
    sim.picks.write_csv(files["picks"])
    files["markdown"].write_text(markdown(sim, files["chart"].name), encoding="utf-8")
    atomic_write_json(files["summary"], {
        "run": str(sim.run_dir), "gold": str(sim.gold_dir), "classifier": CLASSIFIER_FAMILY, "batch": sim.batch,
        "budget": sim.budget, "seeds": sim.seeds, "checkpoints": sim.points, "pool": sim.pool.counts,
        "start_rows": len(sim.pool.start), "test_rows": len(sim.pool.test), "minority": sim.pool.minority,
        "minority_f1": "mean test F1 of the categories with the fewest gold train sentences",
        "small_pool": sim.small_pool(), "saving": {m: sim.saving(m) for m in METRICS},
        "lines": sim.lines(), "curve": sim.summary.to_dicts()})
    return list(files.values())
