"""Which sentence encoder serves each use, measured on gold train (the test split is never looked at).

    python -m factory.quality.encoder_eval --gold RUN/gold [--encoders all-minilm-l6-v2,all-mpnet-base-v2]
                                           [--heldout FILE.jsonl] [--out FILE.json]

The factory embeds sentences in three places, and an encoder that wins one need not win the others:
- the `embedding` labelling strategy (and the prior of `embedding+X`): its micro/macro-F1 on gold train,
  each sentence scored leave-one-out against the other gold-train sentences, as `label` does;
- few-shot exemplar retrieval: of the 8 nearest other gold-train sentences, the share whose label set is
  the sentence's own (what the LLM is shown as precedent);
- the frozen-encoder classifier: the trainer's own cross-validated micro-F1 on gold train, and (with
  `--heldout`) micro-F1 on sentences written in other styles, trained on all of gold train.
Plus the cost: encoder load time and sentences/s embedding gold train, both without the embedding cache.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from factory.core.errors import FactoryError
from factory.data.rows import Rows
from factory.data.taxonomy import load_taxonomy
from factory.engines.embedder import Embedder, resolve_encoder
from factory.stages.strategies import FEWSHOT_SHOTS, EmbeddingStrategy
from factory.quality.strategy_eval import score_against_gold

DEFAULT_ENCODERS = ("all-minilm-l6-v2", "all-mpnet-base-v2")


def gold_train(gold_dir: Path, taxonomy) -> Rows:
    from factory.data.gold import load_gold
    from factory.data.split import load_or_create_split

    rows = load_gold(gold_dir, taxonomy)
    split = load_or_create_split(rows, gold_dir, taxonomy)
    return rows.subset(split.train_indices(rows))


def timed_embedding(encoder: str, texts: list[str]) -> tuple[Embedder, np.ndarray, dict]:
    """Load the encoder and embed every text with no cache, so the time is what a first run pays."""
    started = time.perf_counter()
    embedder = Embedder(resolve_encoder(encoder), cache_dir=None)
    embedder.embed(texts[:1])  # loads the weights
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    seconds = time.perf_counter() - started
    return embedder, vectors, {"load_s": round(loaded, 2), "sentences_per_s": round(len(texts) / seconds, 1),
                               "dimensions": int(vectors.shape[1])}


def embedding_strategy_scores(embedder: Embedder, rows: Rows, taxonomy) -> dict:
    strategy = EmbeddingStrategy(taxonomy, rows, embedder)  # leave-one-out: a sentence is never its own exemplar
    predicted = [p.labels for p in strategy.priors(list(rows.texts))]
    scores = score_against_gold(predicted, list(rows.labels), taxonomy)
    return {k: round(scores[k], 4) for k in ("micro_f1", "macro_f1", "binary_f1", "mean_labels_predicted")}


def retrieval_precision(vectors: np.ndarray, labels: list[list[str]], shots: int = FEWSHOT_SHOTS) -> dict:
    """Share of each sentence's `shots` nearest neighbours (itself excluded) with exactly its label set."""
    keys = [frozenset(lab) for lab in labels]
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :shots]
    same = np.array([[keys[j] == keys[i] for j in row] for i, row in enumerate(nearest)])
    return {"precision_at_k": round(float(same.mean()), 4), "any_match_at_k": round(float(same.any(axis=1).mean()), 4),
            "k": shots}


def classifier_scores(encoder: str, gold_dir: Path, taxonomy, heldout: Path | None) -> dict:
    """The frozen-encoder classifier as `compare` trains it: CV micro-F1 over gold train, and held-out micro-F1."""
    from factory.trainer.compare import CompareOptions, choose_on_gold_train, fit_and_score, prepare_data

    with tempfile.TemporaryDirectory() as cache:
        opts = CompareOptions(gold_dir=gold_dir, out_dir=Path(cache) / "unused", models=["encoder"], seeds=[0],
                              sets=["gold"], encoder=resolve_encoder(encoder), cache_dir=Path(cache))
        data = prepare_data(opts, taxonomy)
        cv = choose_on_gold_train(opts, data, taxonomy).cv[("encoder", "gold")]
        out = {"cv_micro_f1": round(cv.micro_mean, 4), "cv_micro_std": round(cv.micro_std, 4)}
        if heldout is not None:
            from factory.trainer.shift_check import micro_f1, read_heldout
            from factory.trainer.classifiers import target_matrix

            texts, labels = read_heldout(heldout, taxonomy)
            model, *_ = fit_and_score("encoder", "gold", 0, opts, data, taxonomy.category_ids)
            decisions = model.decide(model.predict_proba(texts))
            out["heldout_micro_f1"] = round(micro_f1(target_matrix(labels, taxonomy.category_ids), decisions,
                                                     taxonomy.category_ids), 4)
    return out


def evaluate_encoder(encoder: str, gold_dir: Path, taxonomy, heldout: Path | None) -> dict:
    rows = gold_train(gold_dir, taxonomy)
    embedder, vectors, cost = timed_embedding(encoder, list(rows.texts))
    return {"encoder": encoder, "gold_train_sentences": len(rows), **cost,
            "embedding_strategy": embedding_strategy_scores(embedder, rows, taxonomy),
            "retrieval": retrieval_precision(vectors, list(rows.labels)),
            "classifier": classifier_scores(encoder, gold_dir, taxonomy, heldout)}


def markdown(results: list[dict]) -> str:
    heldout = any("heldout_micro_f1" in r["classifier"] for r in results)
    lines = ["| encoder | dims | load s | sent/s | embedding strategy micro / macro | exemplar precision@8 "
             "| classifier CV micro | " + ("classifier held-out micro |" if heldout else ""),
             "|---" * (8 if heldout else 7) + "|"]
    for r in results:
        e, c = r["embedding_strategy"], r["classifier"]
        cells = [r["encoder"], str(r["dimensions"]), f"{r['load_s']:.1f}", f"{r['sentences_per_s']:.0f}",
                 f"{e['micro_f1']:.3f} / {e['macro_f1']:.3f}", f"{r['retrieval']['precision_at_k']:.3f}",
                 f"{c['cv_micro_f1']:.3f} ± {c['cv_micro_std']:.3f}"]
        if heldout:
            cells.append(f"{c.get('heldout_micro_f1', float('nan')):.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m factory.quality.encoder_eval", description=__doc__.split("\n")[0])
    parser.add_argument("--gold", type=Path, required=True, help="An imported gold folder (its train split is used).")
    parser.add_argument("--encoders", default=",".join(DEFAULT_ENCODERS), help="Comma-separated catalogue names or folders.")
    parser.add_argument("--heldout", type=Path, default=None, help="JSONL of {text, labels} in other writing styles.")
    parser.add_argument("--out", type=Path, default=None, help="Also write the results as JSON here.")
    args = parser.parse_args(argv)
    from factory.core.offline import force_offline

    force_offline()
    try:
        if not (args.gold / "gold.parquet").exists() and not args.gold.is_dir():
            raise FactoryError(f"gold folder not found: {args.gold}")
        taxonomy = load_taxonomy()
        results = [evaluate_encoder(name.strip(), args.gold, taxonomy, args.heldout)
                   for name in args.encoders.split(",") if name.strip()]
    except FactoryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(markdown(results))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
