"""Write a comparison's artefacts: terminal tables, Markdown + HTML report, metrics (Parquet + CSV) and
a bar chart of per-category F1 by training set. All renderings share one table layout so they agree.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from factory.trainer.compare import CompareResult
from factory.data.rows import SYNTHETIC_SOURCES

CHART_FILE = "f1_by_category.png"


@dataclass
class Table:
    title: str
    columns: list[str]  # training sets
    rows: list[tuple[str, str, list[str], set[int], bool]]  # (label, support, cells, best columns, minority)


def _fmt(mean: float, std: float, n_seeds: int) -> str:
    return f"{mean:.3f} ± {std:.3f}" if n_seeds > 1 else f"{mean:.3f}"


def f1_tables(result: CompareResult) -> list[Table]:
    """One table per model: rows = categories then micro / macro / binary F1, columns = training sets."""
    data, summary = result.data, result.summary
    test_support = data.gold_test.label_counts()
    tables = []
    for name in result.model_names:
        part = summary.filter(pl.col("model") == name)
        lookup = {(r["training_set"], r["category"]): r for r in part.iter_rows(named=True)}
        rows = []
        labels = list(data.gold_support) + ["micro", "macro", "binary"]
        for label in labels:
            cells, means = [], []
            for set_name in data.sets:
                r = lookup[(set_name, label)]
                cells.append(_fmt(r["f1_mean"], r["f1_std"], r["n_seeds"]))
                means.append(r["f1_mean"])
            best = _best_columns(means)
            if label in data.gold_support:
                support = f"{test_support.get(label, 0)} / {data.gold_support[label]}"
            else:
                support = str(lookup[(data.sets[0], label)]["support"]) if label == "binary" else ""
            rows.append((label, support, cells, best, label in data.minority))
        tables.append(Table(f"F1 on the gold test split, model {name}", list(data.sets), rows))
    return tables


def _best_columns(means: list[float]) -> set[int]:
    """Columns holding the row's maximum; none when every column ties (nothing to point out)."""
    top = max(means)
    best = {i for i, m in enumerate(means) if m >= top - 1e-9}
    return set() if len(best) == len(means) else best


def binary_table(result: CompareResult) -> Table:
    part = result.summary.filter(pl.col("scope") == "binary")
    rows = []
    for name in result.model_names:
        for set_name in result.data.sets:
            r = part.filter((pl.col("model") == name) & (pl.col("training_set") == set_name)).row(0, named=True)
            cells = [_fmt(r[f"{m}_mean"], r[f"{m}_std"], r["n_seeds"]) for m in ("precision", "recall", "f1")]
            rows.append((f"{name} / {set_name}", str(r["support"]), cells, set(), False))
    return Table("Binary task (any category vs none) on the gold test split", ["precision", "recall", "f1"], rows)


def data_lines(result: CompareResult, notes: bool = True) -> list[str]:
    d, o = result.data, result.options
    lines = [
        f"gold: {len(d.gold)} sentences ({o.gold_dir}); frozen test split {d.split.path}: "
        f"{len(d.gold_train)} train / {len(d.gold_test)} test (split seed {d.split.seed}, fraction {d.split.test_fraction})",
    ]
    for role in SYNTHETIC_SOURCES:
        folders = o.silver_dirs if role == "silver" else o.bronze_dirs
        if folders:
            lines.append(f"{role}: {len(d.synthetic[role])} sentences after leakage removal "
                         f"({', '.join(str(f) for f in folders)})")
    lines.append(f"synthetic sentences equal to a gold test sentence, removed from training: {d.leakage.total}"
                 + (f" (listed in leakage_removed.csv), e.g. {d.leakage.examples[0]!r}" if d.leakage.examples else ""))
    cap = "none" if o.synthetic_cap_ratio is None else f"{o.synthetic_cap_ratio} x gold train"
    lines.append(f"models: {', '.join(result.model_names)}; seeds: {', '.join(map(str, o.seeds))}; "
                 f"synthetic cap: {cap}; synthetic weight: {o.synthetic_weight}")
    lines.append(f"minority categories (lowest gold support, marked ★): {', '.join(d.minority)}")
    lines.append(f"wall time: {result.seconds:.1f} s")
    return lines + ([f"note: {n}" for n in d.notes] if notes else [])


# ------------------------------------------------------------------------------------------- renderers


def print_tables(result: CompareResult, console) -> None:
    from rich.table import Table as RichTable

    for line in data_lines(result, notes=False):  # notes were printed when the run started
        console.print(line, highlight=False)
    for table in [*f1_tables(result), binary_table(result)]:
        rich = RichTable(title=table.title, title_justify="left")
        rich.add_column("category" if table.columns != ["precision", "recall", "f1"] else "model / set")
        rich.add_column("support test/all", justify="right")
        for column in table.columns:
            rich.add_column(column, justify="right")
        for label, support, cells, best, minority in table.rows:
            styled = [f"[bold green]{c}[/]" if i in best else c for i, c in enumerate(cells)]
            if label in ("micro", "binary"):
                rich.add_section()
            name = f"★ {label}" if minority else label
            rich.add_row(name, support, *styled, style="yellow" if minority else None)
        console.print(rich)


def markdown_report(result: CompareResult, chart: Path) -> str:
    out = ["# Gold vs silver vs bronze: classifier comparison", ""]
    out += [f"- {line}" for line in data_lines(result)] + [""]
    out.append("Cells are F1 mean ± std over seeds; **bold** = best training set for the row; "
               "★ = minority category (lowest gold support); support = gold test / all gold sentences. "
               "The TF-IDF and frozen-encoder heads are deterministic: seeds only change the capped synthetic "
               "sample and fine-tuning, so their std is 0 without a cap.")
    out.append("")
    for table in [*f1_tables(result), binary_table(result)]:
        out += [f"## {table.title}", ""]
        head = ["category" if table.columns != ["precision", "recall", "f1"] else "model / set", "support", *table.columns]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for label, support, cells, best, minority in table.rows:
            cells = [f"**{c}**" if i in best else c for i, c in enumerate(cells)]
            out.append("| " + " | ".join([f"★ {label}" if minority else label, support, *cells]) + " |")
        out.append("")
    out += ["## Per-category F1 by training set", "", f"![per-category F1]({chart.name})", "",
            "Full metrics (precision, recall, F1, support per seed): `metrics.csv` / `metrics.parquet`; "
            "mean and std over seeds: `summary.csv` / `summary.parquet`.", ""]
    return "\n".join(out)


def html_report(result: CompareResult, chart: Path) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Classifier comparison</title><style>",
             "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}",
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}",
             "tr.minority{background:#fff6d6}td.best{font-weight:bold;color:#106010}",
             "</style></head><body><h1>Gold vs silver vs bronze: classifier comparison</h1><ul>"]
    parts += [f"<li>{e(line)}</li>" for line in data_lines(result)]
    parts.append("</ul><p>Cells are F1 mean ± std over seeds; bold = best training set for the row; "
                 "★ / shaded = minority category (lowest gold support); support = gold test / all gold.</p>")
    for table in [*f1_tables(result), binary_table(result)]:
        parts.append(f"<h2>{e(table.title)}</h2><table><tr><th>row</th><th>support</th>"
                     + "".join(f"<th>{e(c)}</th>" for c in table.columns) + "</tr>")
        for label, support, cells, best, minority in table.rows:
            tds = "".join(f"<td class='best'>{e(c)}</td>" if i in best else f"<td>{e(c)}</td>" for i, c in enumerate(cells))
            name = f"★ {label}" if minority else label
            parts.append(f"<tr{' class=minority' if minority else ''}><td>{e(name)}</td><td>{e(support)}</td>{tds}</tr>")
        parts.append("</table>")
    image = base64.b64encode(chart.read_bytes()).decode("ascii")  # self-contained: one file to share
    parts.append(f"<h2>Per-category F1 by training set</h2><img alt='per-category F1' style='max-width:100%' "
                 f"src='data:image/png;base64,{image}'></body></html>")
    return "\n".join(parts)


def bar_chart(result: CompareResult, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    data = result.data
    categories = list(data.gold_support)
    fig, axes = plt.subplots(len(result.model_names), 1, figsize=(max(10, 1.3 * len(categories)), 4 * len(result.model_names)),
                             squeeze=False)
    width = 0.8 / len(data.sets)
    x = np.arange(len(categories))
    for ax, name in zip(axes[:, 0], result.model_names):
        part = result.summary.filter((pl.col("model") == name) & (pl.col("scope") == "category"))
        for k, set_name in enumerate(data.sets):
            rows = {r["category"]: r for r in part.filter(pl.col("training_set") == set_name).iter_rows(named=True)}
            means = [rows[c]["f1_mean"] for c in categories]
            stds = [rows[c]["f1_std"] for c in categories]
            ax.bar(x + (k - (len(data.sets) - 1) / 2) * width, means, width, yerr=stds, capsize=2, label=set_name)
        ax.set_xticks(x, [f"★ {c}" if c in data.minority else c for c in categories], rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("F1 (gold test)")
        ax.set_title(f"model {name}")
        ax.set_ylim(0, 1.2)  # headroom for the legend above the bars
        ax.legend(fontsize=7, ncol=min(6, len(data.sets)), loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: CompareResult, console=None) -> dict[str, Path]:
    """Write every artefact into the run folder; returns their paths by kind."""
    out = Path(result.options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "metrics_parquet": out / "metrics.parquet",
        "metrics_csv": out / "metrics.csv",
        "summary_parquet": out / "summary.parquet",
        "summary_csv": out / "summary.csv",
        "chart": out / CHART_FILE,
        "markdown": out / "report.md",
        "html": out / "report.html",
        "config": out / "config.json",
        "leakage": out / "leakage_removed.csv",
    }
    result.metrics.write_parquet(paths["metrics_parquet"])
    result.metrics.write_csv(paths["metrics_csv"])
    result.summary.write_parquet(paths["summary_parquet"])
    result.summary.write_csv(paths["summary_csv"])
    pl.DataFrame(result.data.leakage.rows, schema={"source": pl.Utf8, "text": pl.Utf8}, orient="row").write_csv(paths["leakage"])
    bar_chart(result, paths["chart"])
    paths["markdown"].write_text(markdown_report(result, paths["chart"]), encoding="utf-8")
    paths["html"].write_text(html_report(result, paths["chart"]), encoding="utf-8")
    o = result.options
    config = {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) and v and isinstance(v[0], Path) else v)
              for k, v in vars(o).items()}
    config.update(sets_run=result.data.sets, notes=result.data.notes, minority=result.data.minority,
                  gold_fingerprint=result.data.split.fingerprint, leakage_removed=result.data.leakage.removed,
                  seconds=round(result.seconds, 1), model_dirs=[str(p) for p in result.model_dirs])
    paths["config"].write_text(json.dumps(config, indent=1, default=str) + "\n", encoding="utf-8")
    if console is not None:
        print_tables(result, console)
        console.print(f"report: {paths['markdown']} and {paths['html']}; metrics: {paths['metrics_csv']}", highlight=False)
    return paths
