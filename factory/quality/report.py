"""Quality report of a run: what the side tables (check, consistency, dedup) and gold say about silver
and bronze. Markdown + one PNG + summary.json under `<run>/quality/`; label-noise flags go to the side
table `<run>/silver_noise/` (written by the stage of factory/stages/noise.py, under the run lock) and a review
sheet (CSV and HTML) for an annotator.

Nothing in silver or bronze is changed.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.output_folder import Writer
from factory.stages.verify import current_verdicts
from factory.stages.consistency import current_agreement
from factory.data.rows import Rows, normalise_text
from factory.stages.dedup import current_duplicates
from factory.data.store import atomic_write_json, content_key, read_dataset, read_json, shard_paths, utc_now
from factory.data.taxonomy import Taxonomy
from factory.stages.noise import NOISE_SCHEMA, write_noise_flags

SPREAD_SAMPLE = 1500  # sentences used for the mean pairwise embedding distance


# ----------------------------------------------------------------------------------------- measures


def label_shares(labels: list[list[str]], ids: list[str]) -> dict[str, float]:
    """Share of sentences carrying each label (multi-label: shares need not sum to 1)."""
    counts = Counter(label for row in labels for label in set(row))
    return {cid: counts.get(cid, 0) / len(labels) if labels else 0.0 for cid in ids}


def word_lengths(texts: list[str]) -> np.ndarray:
    return np.array([len(t.split()) for t in texts], dtype=float)


def length_summary(texts: list[str]) -> dict[str, float]:
    lengths = word_lengths(texts)
    if not len(lengths):
        return {}
    return {"mean": float(lengths.mean()), "median": float(np.median(lengths)),
            "p10": float(np.percentile(lengths, 10)), "p90": float(np.percentile(lengths, 90))}


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams / all n-grams over the dataset (lower = more repetitive)."""
    grams = [tuple(words[i:i + n]) for t in texts for words in [normalise_text(t).split()]
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def embedding_spread(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance of L2-normalised embeddings (higher = more varied sentences)."""
    n = len(vectors)
    if n < 2:
        return 0.0
    sims = vectors @ vectors.T
    return float(1 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def overlap_agreement(silver: pl.DataFrame, gold: Rows, taxonomy: Taxonomy) -> dict:
    """Silver labels vs gold labels on sentences both contain (matched after normalisation)."""
    from factory.quality.strategy_eval import score_against_gold

    gold_by_text = {normalise_text(t): labels for t, labels in zip(gold.texts, gold.labels)}
    pairs = [(list(labels), gold_by_text[normalise_text(text)]) for text, labels in zip(silver["text"], silver["labels"])
             if normalise_text(text) in gold_by_text]
    if not pairs:
        return {"overlap": 0}
    scores = score_against_gold([p for p, _ in pairs], [g for _, g in pairs], taxonomy)
    exact = sum(sorted(p) == sorted(g) for p, g in pairs) / len(pairs)
    return {"overlap": len(pairs), "micro_f1": scores["micro_f1"], "macro_f1": scores["macro_f1"], "exact_match": exact}


def gold_classifier(gold: Rows, taxonomy: Taxonomy):
    """Frozen MiniLM + one-vs-rest logistic regression on all gold (the trainer's cached embeddings)."""
    from factory.trainer.classifiers import FrozenEncoderModel, output_names, target_matrix

    model = FrozenEncoderModel(output_names(taxonomy.category_ids), seed=0)
    return model.fit(gold.texts, target_matrix(gold.labels, taxonomy.category_ids))


def predicted_labels(probabilities: np.ndarray, taxonomy: Taxonomy, threshold: float = 0.5) -> list[list[str]]:
    cats = taxonomy.category_ids
    return [[c for j, c in enumerate(cats) if row[j] >= threshold] or [taxonomy.none.id] for row in probabilities]


def category_fidelity(bronze: pl.DataFrame, probabilities: np.ndarray, taxonomy: Taxonomy) -> dict[str, float]:
    """Per intended category: share of bronze sentences whose gold-classifier labels include it
    ('none': the classifier finds no category)."""
    predicted = predicted_labels(probabilities, taxonomy)
    hits: dict[str, list[bool]] = {}
    for category, labels in zip(bronze["category"], predicted):
        hits.setdefault(category, []).append(category in labels)
    return {c: float(np.mean(hits[c])) for c in taxonomy.all_ids if c in hits}


def noise_flags(silver: pl.DataFrame, probabilities: np.ndarray, taxonomy: Taxonomy, threshold: float) -> pl.DataFrame:
    """A silver row is flagged where the gold-trained classifier is confident (p >= threshold) a label is
    missing, or confident (p <= 1 - threshold) that a given label is wrong."""
    cats = taxonomy.category_ids
    rows = []
    now = utc_now()
    for row_id, text, labels, probs, classified in zip(silver["row_id"], silver["text"], silver["labels"], probabilities,
                                                       predicted_labels(probabilities, taxonomy)):
        reasons, strength = [], 0.0
        for j, cid in enumerate(cats):
            p = float(probs[j])
            if cid in labels and p <= 1 - threshold:
                reasons.append(f"{cid} given, classifier P={p:.2f}")
                strength = max(strength, 1 - p)
            elif cid not in labels and p >= threshold:
                reasons.append(f"{cid} missing, classifier P={p:.2f}")
                strength = max(strength, p)
        rows.append({"row_id": row_id, "text": text, "labels": list(labels), "classifier_labels": classified,
                     "flagged": bool(reasons), "reason": "; ".join(reasons) or None,
                     "confidence": strength if reasons else None, "created_at": now})
    return pl.DataFrame(rows, schema=NOISE_SCHEMA, strict=False)


def write_review_sheet(flags: pl.DataFrame, out_dir: Path, limit: int) -> tuple[Path, Path]:
    """The most confident disagreements, for an annotator: CSV plus a self-contained HTML table."""
    sheet = (flags.filter(pl.col("flagged")).sort("confidence", descending=True).head(limit)
             .select("row_id", "text", pl.col("labels").list.join("; ").alias("silver_labels"),
                     pl.col("classifier_labels").list.join("; ").alias("classifier_labels"), "reason",
                     pl.col("confidence").round(3), pl.lit("").alias("annotator_labels"), pl.lit("").alias("comment")))
    csv_path, html_path = out_dir / "review_sheet.csv", out_dir / "review_sheet.html"
    sheet.write_csv(csv_path)
    header = "".join(f"<th>{html.escape(c)}</th>" for c in sheet.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v if v is not None else ''))}</td>" for v in row) + "</tr>"
                   for row in sheet.iter_rows())
    html_path.write_text(
        "<!doctype html><meta charset='utf-8'><title>Silver labels to review</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px;vertical-align:top}"
        "table{border-collapse:collapse}</style>"
        f"<h1>Silver labels to review ({sheet.height})</h1><p>Rows where a classifier trained on gold confidently "
        "disagrees with the LLM's label. Fill in annotator_labels in the CSV.</p>"
        f"<table><tr>{header}</tr>{body}</table>\n", encoding="utf-8")
    return csv_path, html_path


def rejection_rates(verdicts: pl.DataFrame | None, ids: list[str]) -> dict[str, dict]:
    if verdicts is None or not verdicts.height:
        return {}
    exploded = verdicts.explode("labels")
    rates = {}
    for cid in ids:
        part = exploded.filter(pl.col("labels") == cid)
        if part.height:
            rates[cid] = {"judged": part.height, "rejected": part.filter(pl.col("verdict") == "reject").height}
    return rates


def attribute_distribution(bronze: pl.DataFrame) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = {}
    for attributes in bronze["attributes"]:
        for name, value in json.loads(attributes or "{}").items():
            counts.setdefault(name, Counter())[value] += 1
    return {name: dict(sorted(c.items())) for name, c in sorted(counts.items())}


# ------------------------------------------------------------------------------------------ the report


def _dataset(run_dir: Path, name: str) -> pl.DataFrame | None:
    return read_dataset(run_dir / name) if shard_paths(run_dir / name) else None


def collect(run_dir: Path, taxonomy: Taxonomy, gold: Rows | None, noise_threshold: float) -> dict:
    """Every number of the report, as plain data (summary.json)."""
    from factory.engines.embedder import shared_embedder

    silver, bronze = _dataset(run_dir, "silver"), _dataset(run_dir, "bronze")
    ids = taxonomy.all_ids
    texts = {"gold": gold.texts if gold else None, "silver": silver["text"].to_list() if silver is not None else None,
             "bronze": bronze["text"].to_list() if bronze is not None else None}
    labels = {"gold": gold.labels if gold else None,
              "silver": silver["labels"].to_list() if silver is not None else None,
              "bronze": bronze["labels"].to_list() if bronze is not None else None}
    present = [name for name in ("gold", "silver", "bronze") if texts[name]]
    embedder = shared_embedder(None)
    report: dict = {"run": str(run_dir), "datasets": {n: len(texts[n]) for n in present}}
    report["label_shares"] = {n: label_shares(labels[n], ids) for n in present}
    report["lengths"] = {n: length_summary(texts[n]) for n in present}
    report["diversity"] = {}
    for n in present:
        sample = texts[n][:SPREAD_SAMPLE]
        report["diversity"][n] = {"distinct_1": distinct_n(texts[n], 1), "distinct_2": distinct_n(texts[n], 2),
                                  "embedding_spread": embedding_spread(embedder.embed(sample))}
    duplicates = current_duplicates(run_dir) if bronze is not None else None
    if duplicates is not None:
        flagged = duplicates.filter(pl.col("duplicate"))
        report["duplicates"] = {"rows": duplicates.height, "flagged": flagged.height,
                                "rate": flagged.height / duplicates.height if duplicates.height else 0.0,
                                "by_reason": {f"{r['reason']} vs {r['dup_source']}": r["len"] for r in
                                              flagged.group_by("reason", "dup_source").len().sort("reason", "dup_source").to_dicts()},
                                "threshold": float(duplicates["threshold"][0]) if duplicates.height else None}
    report["verifier"] = {}
    for name, frame in (("silver", silver), ("bronze", bronze)):
        verdicts = current_verdicts(run_dir, name) if frame is not None else None
        if verdicts is not None:
            rejected = verdicts.filter(pl.col("verdict") == "reject").height
            report["verifier"][name] = {"judged": verdicts.height, "rejected": rejected,
                                        "rate": rejected / verdicts.height if verdicts.height else 0.0,
                                        "by_category": rejection_rates(verdicts, ids)}
    agreement = current_agreement(run_dir) if silver is not None else None
    if agreement is not None and agreement.height:
        values = agreement["agreement"].to_numpy()
        report["agreement"] = {"rows": agreement.height, "mean": float(values.mean()),
                               "quantiles": {q: float(np.quantile(values, float(q))) for q in ("0.1", "0.25", "0.5", "0.75")},
                               "histogram": {f"{b:.1f}": int(((values >= b - 1e-9) & (values < b + 0.1 - 1e-9)).sum())
                                             for b in np.arange(0, 1.01, 0.1)},
                               "silver_equals_majority": float(agreement["silver_agrees"].mean()),
                               "logprob_confidence_mean": agreement["logprob_confidence"].mean()}
    if bronze is not None:
        report["bronze_attributes"] = attribute_distribution(bronze)
    if gold:
        classifier = gold_classifier(gold, taxonomy)
        if silver is not None:
            report["silver_vs_gold"] = overlap_agreement(silver, gold, taxonomy)
            flags = noise_flags(silver, classifier.predict_proba(silver["text"].to_list()), taxonomy, noise_threshold)
            report["noise"] = {"rows": flags.height, "flagged": int(flags["flagged"].sum()), "threshold": noise_threshold}
            report["_noise_frame"] = flags
        if bronze is not None:
            report["category_fidelity"] = category_fidelity(bronze, classifier.predict_proba(bronze["text"].to_list()), taxonomy)
    strategies = run_dir / "strategies" / "strategies.json"
    if strategies.is_file():
        report["strategies"] = read_json(strategies)
    return report


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def markdown(report: dict, taxonomy: Taxonomy, chart: Path, files: dict[str, Path]) -> str:
    present = list(report["datasets"])
    out = [f"# Quality report: {report['run']}", "",
           "Datasets: " + ", ".join(f"{n} {c} sentences" for n, c in report["datasets"].items()), "",
           f"![quality]({chart.name})", "", "## Label distribution (share of sentences)", "",
           "| label | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for cid in taxonomy.all_ids:
        out.append(f"| {cid} | " + " | ".join(_pct(report["label_shares"][n][cid]) for n in present) + " |")
    out += ["", "## Sentence length (words) and diversity", "",
            "| dataset | mean | median | p10 | p90 | distinct-1 | distinct-2 | embedding spread |", "|---|---|---|---|---|---|---|---|"]
    for n in present:
        length, div = report["lengths"][n], report["diversity"][n]
        out.append(f"| {n} | {length['mean']:.1f} | {length['median']:.0f} | {length['p10']:.0f} | {length['p90']:.0f} | "
                   f"{div['distinct_1']:.3f} | {div['distinct_2']:.3f} | {div['embedding_spread']:.3f} |")
    out += ["", "Embedding spread = mean pairwise cosine distance (bundled MiniLM). Distinct-n grows as a set "
            "shrinks, so compare sets of similar size.", "", "## Bronze duplicates", ""]
    dup = report.get("duplicates")
    if dup:
        reasons = ", ".join(f"{k}: {v}" for k, v in dup["by_reason"].items()) or "none"
        out.append(f"{dup['flagged']} of {dup['rows']} bronze sentences flagged ({_pct(dup['rate'])}; {reasons}; "
                   f"near = MiniLM cosine >= {dup['threshold']}). Flagged rows stay in bronze; "
                   "`compare --drop-duplicates` leaves them out.")
    else:
        out.append("Not run (`bin/generate dedup --run DIR`).")
    out += ["", "## Verifier (LLM judge) rejections", ""]
    if report["verifier"]:
        out += ["| label | " + " | ".join(f"{n} rejected" for n in report["verifier"]) + " |",
                "|---|" + "---|" * len(report["verifier"])]
        for cid in taxonomy.all_ids:
            cells = []
            for n, v in report["verifier"].items():
                c = v["by_category"].get(cid)
                cells.append(f"{c['rejected']}/{c['judged']} ({_pct(c['rejected'] / c['judged'])})" if c else "–")
            out.append(f"| {cid} | " + " | ".join(cells) + " |")
        out.append("| **all rows** | " + " | ".join(f"{v['rejected']}/{v['judged']} ({_pct(v['rate'])})"
                                                   for v in report["verifier"].values()) + " |")
    else:
        out.append("Not run (`bin/generate check --run DIR`).")
    out += ["", "## Silver self-consistency", ""]
    agreement = report.get("agreement")
    if agreement:
        q = agreement["quantiles"]
        lp = agreement["logprob_confidence_mean"]
        out.append(f"{agreement['rows']} silver rows sampled; mean agreement {agreement['mean']:.2f} "
                   f"(p10 {q['0.1']:.2f}, p25 {q['0.25']:.2f}, median {q['0.5']:.2f}, p75 {q['0.75']:.2f}); "
                   f"the greedy silver label equals the sampled majority on {_pct(agreement['silver_equals_majority'])}"
                   + (f"; mean token-probability confidence {lp:.2f}" if lp is not None else "") + ".")
        out.append("")
        out.append("| agreement | " + " | ".join(agreement["histogram"]) + " |")
        out.append("|---|" + "---|" * len(agreement["histogram"]))
        out.append("| rows | " + " | ".join(str(v) for v in agreement["histogram"].values()) + " |")
    else:
        out.append("Not run (`bin/generate consistency --run DIR`).")
    if "silver_vs_gold" in report or "category_fidelity" in report:
        out += ["", "## Against gold", ""]
        overlap = report.get("silver_vs_gold")
        if overlap and overlap["overlap"]:
            out.append(f"- Silver vs gold on {overlap['overlap']} shared sentences: micro-F1 {overlap['micro_f1']:.3f}, "
                       f"macro-F1 {overlap['macro_f1']:.3f}, exact label-set match {_pct(overlap['exact_match'])}.")
        elif overlap is not None:
            out.append("- Silver and gold share no sentence.")
        fidelity = report.get("category_fidelity")
        if fidelity:
            out.append("- Category fidelity of bronze (a frozen-MiniLM classifier trained on all gold finds the "
                       "intended category): " + ", ".join(f"{c} {_pct(v)}" for c, v in fidelity.items())
                       + f"; mean {_pct(float(np.mean(list(fidelity.values()))))}.")
        noise = report.get("noise")
        if noise:
            out.append(f"- Label-noise flags: {noise['flagged']} of {noise['rows']} silver rows, where the gold classifier "
                       f"is at least {noise['threshold']:.2f} confident the silver label set is wrong; review sheet "
                       f"[{files['review_csv'].name}]({files['review_csv'].name}) / "
                       f"[{files['review_html'].name}]({files['review_html'].name}).")
    strategies = report.get("strategies")
    if strategies:
        out += ["", "## Labelling strategies against gold", "",
                f"LLM {strategies['model']}, {strategies['sentences']} gold sentences of {strategies['gold']} "
                "(each strategy labels the gold sentences themselves; few-shot examples and embedding exemplars "
                "come from the same gold, leaving the sentence itself out).", "",
                "| strategy | micro-F1 | macro-F1 | micro-P | micro-R | labels/sentence (gold) | failed |", "|---|---|---|---|---|---|---|"]
        for name, r in strategies["results"].items():
            out.append(f"| {name} | {r['micro_f1']:.3f} | {r['macro_f1']:.3f} | {r['micro_precision']:.3f} | "
                       f"{r['micro_recall']:.3f} | {r['mean_labels_predicted']:.2f} ({r['mean_labels_gold']:.2f}) | {r['failed']} |")
    attributes = report.get("bronze_attributes")
    if attributes:
        out += ["", "## Bronze generation attributes (sampled, balanced per category)", ""]
        for name, counts in attributes.items():
            out.append(f"- {name}: " + ", ".join(f"{v} {c}" for v, c in counts.items()))
    return "\n".join(out) + "\n"


def chart(report: dict, taxonomy: Taxonomy, run_dir: Path, gold: Rows | None, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    present = list(report["datasets"])
    ids = taxonomy.all_ids
    width = 0.8 / max(len(present), 1)
    for k, n in enumerate(present):
        axes[0, 0].bar(np.arange(len(ids)) + k * width, [report["label_shares"][n][c] for c in ids], width, label=n)
    axes[0, 0].set_xticks(np.arange(len(ids)) + 0.4 - width / 2, ids, rotation=40, ha="right", fontsize=8)
    axes[0, 0].set_title("label distribution (share of sentences)")
    axes[0, 0].legend()
    texts = {"gold": gold.texts if gold else None}
    for name in ("silver", "bronze"):
        frame = _dataset(run_dir, name)
        texts[name] = frame["text"].to_list() if frame is not None else None
    bins = np.arange(0, 51, 2)
    for n in present:
        axes[0, 1].hist(np.clip(word_lengths(texts[n]), 0, 50), bins=bins, alpha=0.5, density=True, label=n)
    axes[0, 1].set_title("sentence length (words)")
    axes[0, 1].legend()
    agreement = report.get("agreement")
    if agreement:
        axes[1, 0].bar(list(agreement["histogram"]), list(agreement["histogram"].values()))
    axes[1, 0].set_title("silver self-consistency agreement" + ("" if agreement else " (not run)"))
    verifier = report.get("verifier", {})
    for k, (n, v) in enumerate(verifier.items()):
        rates = [(v["by_category"][c]["rejected"] / v["by_category"][c]["judged"]) if c in v["by_category"] else 0 for c in ids]
        axes[1, 1].bar(np.arange(len(ids)) + k * 0.4, rates, 0.4, label=n)
    axes[1, 1].set_xticks(np.arange(len(ids)) + 0.2, ids, rotation=40, ha="right", fontsize=8)
    axes[1, 1].set_title("verifier rejection rate per label" + ("" if verifier else " (not run)"))
    if verifier:
        axes[1, 1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


REPORT_FILES = frozenset({"quality.png", "report.md", "summary.json", "review_sheet.csv", "review_sheet.html",
                          "llm_vs_review.json", "llm_vs_review.md", "reliability.png"})


def _is_legacy_report(folder: Path) -> bool:
    """A quality report written before markers: only its own files, and a summary.json only it writes."""
    names = {p.name for p in folder.iterdir()}
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return names <= REPORT_FILES and isinstance(summary, dict) and {"run", "datasets"} <= set(summary)


# A report rebuilt from the run: a rerun (the default <run>/quality) replaces it.
QUALITY_WRITER = Writer("quality", legacy=_is_legacy_report)


def build_report(run_dir: Path, taxonomy: Taxonomy, gold_path: Path | None, out_dir: Path, noise_threshold: float = 0.9,
                 review_limit: int = 50, console=None) -> list[Path]:
    from factory.data.gold import read_gold_any

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    gold = read_gold_any(gold_path, taxonomy) if gold_path else None
    report = collect(run_dir, taxonomy, gold, noise_threshold)
    files = {"chart": out_dir / "quality.png", "markdown": out_dir / "report.md", "summary": out_dir / "summary.json"}
    flags = report.pop("_noise_frame", None)
    if flags is not None:
        gold_fingerprint = content_key(gold=sorted(zip(gold.texts, map(sorted, gold.labels))))
        write_noise_flags(run_dir, flags, noise_threshold, gold_fingerprint)
        files["review_csv"], files["review_html"] = write_review_sheet(flags, out_dir, review_limit)
    chart(report, taxonomy, run_dir, gold, files["chart"])
    text = markdown(report, taxonomy, files["chart"], files)
    files["markdown"].write_text(text, encoding="utf-8")
    atomic_write_json(files["summary"], report)
    if console is not None:
        from rich.markdown import Markdown

        console.print(Markdown(text.split("## Bronze generation attributes")[0]))
    return list(files.values())
