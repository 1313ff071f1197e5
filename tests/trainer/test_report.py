"""The comparison's report: the tables built once and rendered the same in the terminal, Markdown and HTML;
the verdict per synthetic source; every artefact written whole into the folder being built."""

from __future__ import annotations

import json

import polars as pl
import pytest
from rich.console import Console

from factory.data.gold import import_gold
from factory.trainer.compare import CompareOptions, parse_sets, run_compare
from factory.trainer.report import (CHART_FILE, _best, _effect, _fmt, build_tables, markdown_report, short_names,
                                    write_report)

from tests.conftest import toy_records, write_jsonl, write_synthetic


def test_short_names_are_initials_made_unique():
    names = short_names(["cognitive_impairment", "notice_by_others", "none", "memory_loss", "motor_lag"])
    assert names["cognitive_impairment"] == "CI" and names["notice_by_others"] == "NO"  # "by" is a small word
    assert names["none"] == "N" and names["memory_loss"] == "ML"
    assert names["motor_lag"] == "MLa"  # taken: a letter of its last word is added


def test_cells_show_the_spread_only_where_seeds_disagree_and_best_marks_only_a_real_winner():
    assert _fmt(0.81234, 0.02, 3) == "0.812 ± 0.020" and _fmt(0.8, 0.02, 3, sep="±") == "0.800±0.020"
    assert _fmt(0.8, 0.0001, 3) == "0.800" and _fmt(0.8, 0.3, 1) == "0.800"  # one seed: no spread to show
    assert _best([0.5, 0.7, None, 0.7]) == {1, 3}
    assert _best([0.7, 0.7]) == set() and _best([None, None]) == set()  # a tie everywhere points at nothing
    assert [_effect(d, 0.01) for d in (0.02, 0.005, -0.005, -0.02)] == ["helped", "no effect", "no effect", "hurt"]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from factory.data.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    root = tmp_path_factory.mktemp("report")
    import_gold(write_jsonl(root / "gold.jsonl", toy_records()), taxonomy, root / "gold")
    write_synthetic(root / "bronze", "bronze",
                    [dict(r, text=r["text"].replace("(visit", "(generated")) for r in toy_records(5, 5)])
    options = CompareOptions(gold_dir=root / "gold", out_dir=root / "exp", bronze_dirs=[root / "bronze"],
                             sets=parse_sets("gold,gold+bronze"), models=["tfidf"], seeds=[0, 1],
                             cache_dir=root / "cache", test_fraction=0.25)
    return run_compare(options, taxonomy, Console(file=open("/dev/null", "w")))


def test_the_report_is_written_whole_into_the_folder_being_built(result, tmp_path):
    build = tmp_path / ".exp.build"
    paths = write_report(result, into=build)
    assert {p.parent for p in paths.values()} == {build} and not result.options.out_dir.exists()
    assert sorted(p.name for p in build.iterdir()) == sorted(p.name for p in paths.values())  # no temp file left
    assert paths["chart"].name == CHART_FILE and paths["chart"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = pl.read_parquet(paths["metrics_parquet"])
    assert metrics.equals(pl.read_csv(paths["metrics_csv"], schema=metrics.schema)) and metrics.equals(result.metrics)
    assert pl.read_parquet(paths["summary_parquet"]).equals(result.summary)


def test_markdown_html_and_config_tell_the_same_tables_and_verdict(result, tmp_path):
    tables = build_tables(result)
    paths = write_report(result, into=tmp_path)
    markdown, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert markdown == markdown_report(result, tables)
    for table in tables.report:
        assert f"## {table.title}" in markdown and f"<h2>{table.title}</h2>" in page.replace("&#x27;", "'")
        for row in table.rows:
            assert row[0] in markdown
    config = json.loads(paths["config"].read_text())
    assert config["verdict"] == tables.verdict and config["sets_run"] == result.data.sets
    # the verdict speaks of bronze against gold alone, raw and selected
    (bronze_line, *_rest) = [line for line in tables.verdict if line.startswith("Bronze against gold alone")]
    assert "raw bronze: tfidf " in bronze_line and "selected bronze: tfidf " in bronze_line
    assert all(line in markdown for line in tables.verdict)
    assert f"![per-category F1]({CHART_FILE})" in markdown and "data:image/png;base64," in page


def test_the_terminal_gets_the_compact_tables_and_where_the_report_went(result, tmp_path):
    console = Console(record=True, width=200, color_system=None)
    write_report(result, console, into=tmp_path)
    text = console.export_text()
    for table in build_tables(result).terminal:  # titles may wrap; their rows do not
        assert all(row[0] in text for row in table.rows), table.title
    assert f"report: {result.options.out_dir / 'report.md'}" in text  # the final place, not the build folder
