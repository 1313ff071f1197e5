"""Building a strategy by name, and the label stage run with a strategy other than json."""

import pytest

from factory.core.errors import FactoryError
from factory.stages.embedding_strategy import EmbeddingStrategy
from factory.stages.label import run_label
from factory.stages.strategies import STRATEGIES, build_strategy
from tests.conftest import FakeEngine
from tests.quality_helpers import release
from tests.stages.strategy_helpers import gold_rows

def test_label_with_a_strategy_writes_silver_rows(notes_dir, taxonomy, make_context, tmp_path):
    import polars as pl

    from factory.data.corpus import iter_notes, iter_sentences
    from factory.data.store import SILVER_SCHEMA

    sentences = list(iter_sentences(iter_notes(notes_dir)))
    ctx = make_context(FakeEngine(lambda *a: None), out=tmp_path / "run")
    stats = run_label(sentences, taxonomy, ctx, strategy=EmbeddingStrategy(taxonomy, gold_rows()))
    release(ctx)
    silver = pl.read_parquet(tmp_path / "run" / "silver")
    assert dict(silver.schema) == SILVER_SCHEMA and silver.height == stats.rows == len(sentences)
    assert (silver["engine"] == "embedding").all() and (silver["evidence"] == "").all()
    again = run_label(sentences, taxonomy, make_context(FakeEngine(lambda *a: None), out=tmp_path / "run"),
                      strategy=EmbeddingStrategy(taxonomy, gold_rows()))
    assert again.skipped == len(sentences) and again.rows == 0


def test_every_strategy_name_builds_and_an_unknown_one_is_refused(taxonomy):
    gold = gold_rows()
    for name in STRATEGIES:
        strategy = build_strategy(name, taxonomy, gold)
        assert strategy.name == name and strategy.call.taxonomy is taxonomy
    with pytest.raises(FactoryError, match="unknown strategy 'vote'"):
        build_strategy("vote", taxonomy, gold)
    with pytest.raises(FactoryError, match="--gold"):
        build_strategy("fewshot", taxonomy, None)
    with pytest.raises(FactoryError, match="apply to embedding"):
        build_strategy("json", taxonomy, gold, weight=0.5)
