"""The review loop, simulated (factory/review/simulation.py, `bin/generate quality simulate-review`): a reviewer
who answers with gold labels, informative vs random order, on a small run whose silver holds half of gold
train, two gold test sentences, two sentences gold lacks and one repeat, with three rows planted as the most
contested (verifier rejection + split votes against the LLM's label)."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from factory.cli.main import main
from factory.core.errors import FactoryError
from factory.data.gold import import_gold, load_gold
from factory.data.run_folder import Run
from factory.data.split import load_or_create_split
from factory.data.store import SILVER_SCHEMA, ShardWriter, content_key
from factory.review.queue import Signals, informative_order, silver_items
from factory.review.signals import fit_classifier
from factory.review.simulation import Simulation, build_pool, checkpoints, simulate, table
from tests.cli.helpers import generate, tree_hashes
from tests.conftest import toy_records, write_jsonl
from tests.review.conftest import NOW, lineage

OUTSIDE_GOLD = ["The patient enjoys gardening on weekends.", "Her favourite colour is green."]
PLANTED = 3  # one row in each of three categories


def _silver_row(text: str, labels: list[str], note: str, index: int) -> dict:
    return {"row_id": content_key(text=text, note=note), "source": "silver", "text": text, "labels": labels,
            "evidence": "", "note_id": note, "sentence_index": index, "char_start": 0, "char_end": len(text),
            **lineage()}


def _plant(run: Path, rows: list[dict]) -> None:
    """Verifier rejections and split self-consistency votes against the LLM's label: the most contested rows."""
    (run / "silver_check").mkdir()
    pl.DataFrame([{"row_id": r["row_id"], "text": r["text"], "labels": r["labels"], "verdict": "reject",
                   "reason": "planted", "created_at": NOW} for r in rows]).write_parquet(
        run / "silver_check" / "part-00000.parquet")
    (run / "silver_consistency").mkdir()
    pl.DataFrame([{"row_id": r["row_id"], "text": r["text"], "labels": r["labels"], "samples": 5, "valid_samples": 5,
                   "majority_labels": ["none"], "agreement": 0.2, "votes": json.dumps({"none": 0.2}),
                   "silver_agrees": False, "created_at": NOW} for r in rows]).write_parquet(
        run / "silver_consistency" / "part-00000.parquet")


def build_simulation_run(folder: Path, taxonomy, with_answers: bool = True, every: int = 2) -> tuple[Path, list[str]]:
    """(the run, the planted rows' ids): gold from the toy records, silver from every `every`-th gold train
    sentence (the LLM labelled them right) plus test sentences, sentences gold lacks and a repeat."""
    run = Run.open(folder)
    import_gold(write_jsonl(folder.parent / f"{folder.name}-gold.jsonl", toy_records()), taxonomy, folder / "gold")
    gold = load_gold(folder / "gold", taxonomy)
    split = load_or_create_split(gold, folder / "gold", taxonomy)
    train, test = gold.subset(split.train_indices(gold)), gold.subset(split.test_indices(gold))
    pool = list(zip(train.texts, train.labels))[::every] if with_answers else []
    silver = [_silver_row(text, list(labels), "a", i) for i, (text, labels) in enumerate(pool)]
    silver += [_silver_row(text, list(labels), "b", i) for i, (text, labels) in enumerate(zip(test.texts[:2], test.labels[:2]))]
    silver += [_silver_row(text, ["none"], "c", i) for i, text in enumerate(OUTSIDE_GOLD)]
    if pool:
        silver.append(_silver_row(pool[0][0], list(pool[0][1]), "d", 0))  # the same sentence in another note
    ShardWriter(folder / "silver", SILVER_SCHEMA).write(silver)
    planted, seen = [], set()
    for row in silver[:len(pool)]:
        category = row["labels"][0]
        if len(row["labels"]) == 1 and category != "none" and category not in seen and len(planted) < PLANTED:
            planted.append(row)
            seen.add(category)
    if planted:
        _plant(folder, planted)
    run.record_stage("silver", {"rows": len(silver)})
    run._lock.close()
    return folder, [r["row_id"] for r in planted]


@pytest.fixture
def sim_run(tmp_path, taxonomy):
    return build_simulation_run(tmp_path / "run", taxonomy)


def test_the_pool_is_silver_that_gold_train_can_answer(sim_run, taxonomy):
    run, _ = sim_run
    pool = build_pool(run, run / "gold", taxonomy)
    gold = load_gold(run / "gold", taxonomy)
    split = load_or_create_split(gold, run / "gold", taxonomy)
    train_size = len(split.train_indices(gold))
    assert pool.counts == {"silver": pool.size + 5, "pool": (train_size + 1) // 2, "gold_test": 2, "no_gold": 2,
                           "repeats": 1}
    assert len(pool.start) + pool.size == train_size  # the pool's sentences wait for review, not in the start
    assert not set(pool.start.texts) & set(pool.rows["text"])
    assert not set(pool.rows["text"]) & {gold.texts[i] for i in split.test_indices(gold)}
    assert all(pool.answers[r] for r in pool.rows["row_id"])
    assert len(pool.minority) == 3 and set(pool.minority) <= set(taxonomy.category_ids)


def test_the_curve_has_a_point_per_batch_for_both_orders(sim_run, taxonomy):
    run, _ = sim_run
    pool = build_pool(run, run / "gold", taxonomy)
    sim = simulate(run, run / "gold", pool, taxonomy, batch=10, seeds=[0, 1])
    points = [*range(0, pool.size, 10), pool.size]
    assert sim.points == points
    for order in ("informative", "random"):
        for seed in (0, 1):
            part = sim.curve.filter((pl.col("order") == order) & (pl.col("seed") == seed))
            assert part["rows_reviewed"].to_list() == points
            assert part["train_rows"].to_list() == [len(pool.start) + p for p in points]
            assert part["micro_f1"].is_between(0, 1).all() and part["minority_f1"].is_between(0, 1).all()
            picked = sim.picks.filter((pl.col("order") == order) & (pl.col("seed") == seed))
            assert sorted(picked["row_id"]) == sorted(pool.rows["row_id"])  # every pool row, once
    end = sim.curve.filter(pl.col("rows_reviewed") == pool.size).sort("order", "seed")
    assert end.filter(pl.col("order") == "informative")["micro_f1"].to_list() == \
        end.filter(pl.col("order") == "random")["micro_f1"].to_list()  # the whole pool: the same rows
    assert table(sim)["rows_reviewed"].to_list() == points
    assert checkpoints(pool.size, 10, 15) == [0, 10, 15]
    short = simulate(run, run / "gold", pool, taxonomy, batch=10, budget=15, seeds=[0])
    assert short.curve.filter(pl.col("order") == "random")["rows_reviewed"].to_list() == [0, 10, 15]


def test_the_same_seed_gives_the_same_table(sim_run, taxonomy):
    run, _ = sim_run
    pool = build_pool(run, run / "gold", taxonomy)
    first, again = (simulate(run, run / "gold", pool, taxonomy, batch=8, budget=16, seeds=[4]) for _ in range(2))
    assert first.curve.equals(again.curve) and first.picks.equals(again.picks)
    assert table(first).equals(table(again))
    other = simulate(run, run / "gold", pool, taxonomy, batch=8, budget=16, seeds=[5])
    random_picks = [s.picks.filter(pl.col("order") == "random")["row_id"].to_list() for s in (first, other)]
    assert random_picks[0] != random_picks[1]


def test_informative_order_reviews_the_planted_rows_first(sim_run, taxonomy):
    run, planted = sim_run
    pool = build_pool(run, run / "gold", taxonomy)
    sim = simulate(run, run / "gold", pool, taxonomy, batch=PLANTED, budget=2 * PLANTED, seeds=[0, 1])
    first = sim.picks.filter(pl.col("batch") == 1)
    for seed in (0, 1):
        chosen = first.filter((pl.col("order") == "informative") & (pl.col("seed") == seed))["row_id"].to_list()
        assert sorted(chosen) == sorted(planted)
    assert sorted(first.filter((pl.col("order") == "random") & (pl.col("seed") == 0))["row_id"]) != sorted(planted)
    # ...and its first batch is the review queue's own head, ranked with the classifier fitted on the start
    classifier = fit_classifier(pool.start.texts, pool.start.labels, taxonomy, 0)
    queue = informative_order(silver_items(run, pool.rows, Signals(taxonomy, classifier)), taxonomy, 0)
    assert [item.row_id for item in queue[:PLANTED]] == \
        first.filter((pl.col("order") == "informative") & (pl.col("seed") == 0))["row_id"].to_list()


def _crafted(sim: Simulation, informative: list[float], random_: list[float]) -> Simulation:
    """The same simulation with chosen mean curves (one seed), to check the saving's arithmetic."""
    records = [{"order": order, "seed": 0, "rows_reviewed": p, "train_rows": p, "micro_f1": f, "macro_f1": f,
                "minority_f1": f} for order, values in (("informative", informative), ("random", random_))
               for p, f in zip(sim.points, values)]
    return Simulation(sim.run_dir, sim.gold_dir, sim.pool, sim.batch, None, [0], sim.points, pl.DataFrame(records),
                      sim.picks)


def test_the_saving_is_read_off_the_mean_curves(sim_run, taxonomy):
    run, _ = sim_run
    pool = build_pool(run, run / "gold", taxonomy)
    sim = simulate(run, run / "gold", pool, taxonomy, batch=10, seeds=[0])
    assert sim.points == [0, 10, 20, 30, pool.size] and sim.reference_point == 20  # nearest half the pool
    faster = _crafted(sim, [0.2, 0.6, 0.7, 0.8, 0.9], [0.2, 0.4, 0.5, 0.6, 0.9])
    assert faster.rows_to_match("micro_f1") == {0: 0, 10: 10, 20: 10, 30: 10, pool.size: pool.size}
    assert faster.saving("micro_f1")["saved_rows"] == 10
    assert faster.saving_line("micro_f1") == (
        "saving (micro-F1): random order reaches 0.500 after 20 reviewed rows; informative order reaches it after 10: "
        "10 rows fewer (50%); informative ahead at 3, behind at 0 of the 3 checkpoints before the whole pool")
    slower = _crafted(sim, [0.2, 0.3, 0.4, 0.5, 0.9], [0.2, 0.4, 0.5, 0.6, 0.9])
    assert slower.saving("micro_f1")["saved_rows"] == 0
    assert "informative order reaches it after 30: it saves none; informative ahead at 0, behind at 3" in \
        slower.saving_line("micro_f1")
    flat = _crafted(sim, [0.5, 0.6, 0.7, 0.8, 0.9], [0.5, 0.4, 0.5, 0.45, 0.9])
    assert flat.saving("micro_f1")["saved_rows"] == 0
    assert flat.saving_line("micro_f1").startswith("saving (micro-F1): none measurable; random order gains nothing by 20")
    short = simulate(run, run / "gold", pool, taxonomy, batch=10, budget=25, seeds=[0])
    assert short.points == [0, 10, 20, 25] and short.reference_point == 25  # the end of a budget short of the pool


def test_the_command_writes_the_report_and_replaces_only_its_own(sim_run):
    run, _ = sim_run
    args = ["quality", "simulate-review", "--run", str(run), "--batch", "10", "--budget", "20", "--seeds", "0,1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    out = run / "review_simulation"
    assert {p.name for p in out.iterdir()} == {"report.md", "curve.png", "table.csv", "curve_by_seed.csv", "picks.csv",
                                               "summary.json", "written-by.json"}
    assert (out / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "\nsaving (micro-F1): " in result.output and "\nsaving (minority F1): " in result.output
    assert "\npool: " in result.output
    report = (out / "report.md").read_text()
    assert "minority F1** = the mean test F1 of the 3 categories with the fewest gold train sentences" in report
    assert pl.read_csv(out / "table.csv")["rows_reviewed"].to_list()[:2] == [0, 10]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pool"]["gold_test"] == 2 and summary["seeds"] == [0, 1]
    assert CliRunner().invoke(main, args).exit_code == 0  # a rerun replaces its own report


def test_a_foreign_out_folder_is_refused_untouched(sim_run, tmp_path):
    run, _ = sim_run
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine\n")
    before = tree_hashes(foreign)
    result = generate("quality", "simulate-review", "--run", run, "--out", foreign, "--seeds", "0")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: --out"), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and tree_hashes(foreign) == before


def test_silver_without_gold_answers_is_refused(tmp_path, taxonomy):
    run, _ = build_simulation_run(tmp_path / "run", taxonomy, with_answers=False)
    with pytest.raises(FactoryError, match="none of the 4 silver rows .* is a gold train sentence .2 equal gold test"):
        build_pool(run, run / "gold", taxonomy)


def test_a_pool_holding_all_of_gold_train_starts_from_nothing(tmp_path, taxonomy):
    run, planted = build_simulation_run(tmp_path / "run", taxonomy, every=1)
    pool = build_pool(run, run / "gold", taxonomy)
    assert len(pool.start) == 0
    sim = simulate(run, run / "gold", pool, taxonomy, batch=PLANTED, budget=2 * PLANTED, seeds=[0])
    before = sim.curve.filter(pl.col("rows_reviewed") == 0)
    assert before["train_rows"].to_list() == [0, 0] and before["micro_f1"].to_list() == [0.0, 0.0]  # predicts nothing
    first = sim.picks.filter((pl.col("order") == "informative") & (pl.col("batch") == 1))
    assert sorted(first["row_id"]) == sorted(planted)  # the verifier and the votes rank the queue without a classifier
