"""The embedding strategy: leave-one-out exemplars, and negatives that teach it what is not AD-related."""

from factory.quality.strategy_eval import score_against_gold
from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.label import label_texts
from tests.stages.strategy_helpers import gold_rows

def test_embedding_prior_is_leave_one_out_and_beats_chance_on_toy_gold(taxonomy):
    gold = gold_rows()
    strategy = EmbeddingStrategy(taxonomy, gold)
    outcomes = label_texts(gold.texts, strategy, None)
    scores = score_against_gold([o.labels for o in outcomes], gold.labels, taxonomy)
    assert scores["micro_f1"] > 0.8  # each toy sentence has same-category neighbours (not itself)
    sims = strategy.similarities([gold.texts[0]])
    assert sims.max() < 0.999  # its own copy in gold was excluded

def test_negatives_teach_the_embedding_strategy_that_ordinary_notes_are_none(taxonomy):
    """20 out-of-domain notes written for this test (tests/fixtures/ood_notes, no AD content): with the demo
    gold alone the embedding strategy calls some of their sentences AD-related; with the ordinary clinical
    negatives (data/demo/negatives.jsonl) among its exemplars it calls nearly all of them 'none'."""
    from factory.data.corpus import iter_notes, iter_sentences
    from factory.data.gold import read_gold_any, read_negatives
    from tests.conftest import ROOT

    gold = read_gold_any(ROOT / "data" / "demo" / "gold.jsonl", taxonomy)
    negatives = read_negatives(ROOT / "data" / "demo" / "negatives.jsonl", taxonomy)
    texts = [s.text for s in iter_sentences(iter_notes(ROOT / "tests" / "fixtures" / "ood_notes"))]

    def none_share(rows) -> float:
        labelled = label_texts(texts, EmbeddingStrategy(taxonomy, rows), None)
        return sum(o.labels == [taxonomy.none.id] for o in labelled) / len(labelled)

    before, after = none_share(gold), none_share(gold + negatives)
    assert len(texts) > 150 and after >= 0.9 and after >= before + 0.05, (before, after)
