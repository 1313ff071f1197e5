"""Write a comparison's artefacts: terminal tables, Markdown + HTML report, metrics (Parquet + CSV), a bar
chart of per-category F1 by training set, and config.json. The tables are built once and rendered three
ways, so they agree; the chart is drawn once in memory, saved and embedded; every file is written
atomically.

The report opens with a verdict per synthetic source (helped / no effect / hurt, overall and on the
minority categories) and the selection that was applied. Terminal tables fit 100 columns: per model
family, one overview (training sets as rows) and one per-category table with short category names.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from factory.data.rows import SYNTHETIC_SOURCES
from factory.data.store import atomic_write_bytes, atomic_write_json, atomic_write_parquet, ensure_writable_dir
from factory.trainer.compare import REVIEWED, CompareResult, selection_family
from factory.trainer.selection import CATEGORY_MARGIN, MICRO_MARGIN, SELECTED_SUFFIX

CHART_FILE = "f1_by_category.png"
EFFECT_BAND = 0.01  # |change in test micro-F1| below this reads "no effect"
MINORITY_BAND = 0.02  # the same for the minority categories' mean F1
_SMALL_WORDS = {"and", "by", "of", "the", "to"}


@dataclass
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    bold: list[set[int]] = field(default_factory=list)  # per row: cells to emphasise
    shaded: set[int] = field(default_factory=set)  # rows to highlight (minority categories)
    breaks: set[int] = field(default_factory=set)  # rows preceded by a separator
    note: str = ""


def _fmt(mean: float, std: float, n_seeds: int, sep: str = " ± ") -> str:
    """Mean, and ± std only when the seeds (or folds) disagree (deterministic fits print one number)."""
    return f"{mean:.3f}{sep}{std:.3f}" if n_seeds > 1 and std >= 0.0005 else f"{mean:.3f}"


def _ms(mean: float, std: float, sep: str = " ± ") -> str:
    return _fmt(mean, std, 2, sep)


def short_names(categories: list[str]) -> dict[str, str]:
    """Initials of a category id's words (cognitive_impairment -> CI), made unique."""
    names: dict[str, str] = {}
    for cid in categories:
        words = [w for w in cid.split("_") if w not in _SMALL_WORDS] or [cid]
        name = "".join(w[0] for w in words).upper()
        candidate, i = name, 1
        while candidate in names.values():
            candidate = name + (words[-1][i] if i < len(words[-1]) else str(i))
            i += 1
        names[cid] = candidate
    return names


class Lookup:
    """Summary rows by (model, training set, category), read once."""

    def __init__(self, result: CompareResult):
        self.rows = {(r["model"], r["training_set"], r["category"]): r for r in result.summary.iter_rows(named=True)}
        counts = result.metrics.group_by(["model", "training_set"], maintain_order=True).agg(
            [pl.col(c).first() for c in result.metrics.columns if c.startswith("n_")])
        self.counts = {(r["model"], r["training_set"]): r for r in counts.iter_rows(named=True)}

    def get(self, model: str, set_name: str, category: str) -> dict | None:
        return self.rows.get((model, set_name, category))

    def f1(self, model: str, set_name: str, category: str) -> float | None:
        row = self.get(model, set_name, category)
        return None if row is None else row["f1_mean"]

    def cell(self, model: str, set_name: str, category: str, sep: str = " ± ", metric: str = "f1") -> str:
        row = self.get(model, set_name, category)
        return "" if row is None else _fmt(row[f"{metric}_mean"], row[f"{metric}_std"], row["n_seeds"], sep)

    def minority_f1(self, model: str, set_name: str, minority: list[str]) -> float | None:
        values = [self.f1(model, set_name, c) for c in minority]
        return None if any(v is None for v in values) else float(np.mean(values))


def _best(values: list[float | None]) -> set[int]:
    """Rows holding the column's maximum; none when every row ties (nothing to point out)."""
    present = [v for v in values if v is not None]
    if not present:
        return set()
    top = max(present)
    best = {i for i, v in enumerate(values) if v is not None and v >= top - 1e-9}
    return set() if len(best) == len(values) else best


def _rows_label(counts: dict | None) -> str:
    if counts is None:
        return ""
    return str(sum(v for k, v in counts.items() if k.startswith("n_")))


# -------------------------------------------------------------------------------------------- tables


def overview_table(result: CompareResult, look: Lookup, name: str, sep: str) -> Table:
    """Training sets as rows: rows trained on, CV micro-F1 on gold train, test micro / macro / binary F1,
    and the minority categories' mean test F1."""
    data = result.data
    family = selection_family("encoder" if name.startswith("encoder") else name)
    header = ["training set", "rows", "CV micro", "micro", "macro", "binary", "minority"]
    rows, columns = [], {c: [] for c in range(2, 7)}
    for set_name in data.sets:
        cv = data.selection.cv.get((family, set_name)) if data.selection is not None else None
        cv_cell = "" if cv is None or name == "encoder-ft" else _ms(cv.micro_mean, cv.micro_std, sep)
        minority = look.minority_f1(name, set_name, data.minority)
        rows.append([set_name, _rows_label(look.counts.get((name, set_name))), cv_cell,
                     look.cell(name, set_name, "micro", sep), look.cell(name, set_name, "macro", sep),
                     look.cell(name, set_name, "binary", sep), "" if minority is None else f"{minority:.3f}"])
        columns[2].append(cv.micro_mean if cv is not None else None)
        for c, key in zip(range(3, 6), ("micro", "macro", "binary")):
            columns[c].append(look.f1(name, set_name, key))
        columns[6].append(minority)
    bold = [set() for _ in rows]
    for c, values in columns.items():
        for i in _best(values):
            bold[i].add(c)
    breaks = {i for i, s in enumerate(data.sets) if i and "+" in s and "+" not in data.sets[i - 1]}
    return Table(f"Model {name}: F1 on the gold test split; CV micro = folds of gold train",
                 header, rows, bold, breaks=breaks)


def category_table(result: CompareResult, look: Lookup, name: str, short: dict[str, str]) -> Table:
    data = result.data
    cats = list(data.gold_support)
    header = ["training set", *[("★" if c in data.minority else "") + short[c] for c in cats]]
    rows, values = [], {j: [] for j in range(len(cats))}
    for set_name in data.sets:
        cells = []
        for j, cid in enumerate(cats):
            f1 = look.f1(name, set_name, cid)
            values[j].append(f1)
            cells.append("" if f1 is None else f"{f1:.2f}")
        rows.append([set_name, *cells])
    bold = [set() for _ in rows]
    for j, column in values.items():
        for i in _best(column):
            bold[i].add(j + 1)
    return Table(f"Model {name}: per-category test F1 (★ = minority)", header, rows,
                 bold)


def support_table(result: CompareResult, short: dict[str, str]) -> Table:
    data = result.data
    test_support = data.gold_test.label_counts()
    rows = [[short[c], c, str(test_support.get(c, 0)), str(data.gold_support[c])] for c in data.gold_support]
    shaded = {i for i, c in enumerate(data.gold_support) if c in data.minority}
    return Table("Categories (★ minority: lowest gold support)", ["short", "category", "test", "all gold"], rows,
                 shaded=shaded)


def binary_table(result: CompareResult, look: Lookup) -> Table:
    rows = []
    for name in result.model_names:
        for set_name in result.data.sets:
            rows.append([f"{name} / {set_name}", *[look.cell(name, set_name, "binary", metric=m)
                                                   for m in ("precision", "recall", "f1")]])
    return Table("Binary task (any category vs none) on the gold test split", ["model / set", "precision", "recall", "f1"],
                 rows)


def selection_table(result: CompareResult) -> Table | None:
    selection = result.data.selection
    if selection is None or not selection.choices:
        return None
    rows = []
    for (family, role), choice in selection.choices.items():
        chosen = next((s for s in choice.scores if s.setting == choice.setting.name), None)
        cv = f"{chosen.micro_mean:.3f}" if chosen else f"{choice.baseline_micro_mean:.3f}"
        rows.append([family, role, choice.setting.name, f"{choice.rows_kept}/{choice.rows_total}",
                     f"{choice.baseline_micro_mean:.3f}", cv])
    return Table(f"Selection chosen on {selection.folds}-fold CV over gold train (never on the test split)",
                 ["family", "source", "setting", "rows kept", "CV gold", "CV chosen"], rows)


def grid_tables(result: CompareResult) -> list[Table]:
    selection = result.data.selection
    if selection is None:
        return []
    tables = []
    for (family, role), choice in selection.choices.items():
        rows, bold = [], []
        rows.append(["none (gold alone)", "0", _ms(choice.baseline_micro_mean, choice.baseline_micro_std),
                     "", "", "yes"])
        bold.append({0} if choice.setting.takes_nothing else set())
        for s in choice.scores:
            rows.append([s.setting, f"{s.rows_kept:.0f}", _ms(s.micro_mean, s.micro_std),
                         f"{s.delta_micro:+.3f}", f"{s.worst_category} {s.worst_delta:+.3f}",
                         "yes" if s.admissible else "no"])
            bold.append({0} if s.setting == choice.setting.name else set())
        tables.append(Table(f"Selection grid: {role}, {family} (chosen: {choice.setting.name}; {choice.reason})",
                            ["setting", "rows (mean/fold)", "CV micro-F1", "Δ micro", "worst category Δ", "admissible"],
                            rows, bold))
    return tables


# ------------------------------------------------------------------------------------------- verdict


def _effect(delta: float, band: float) -> str:
    return "helped" if delta > band else "hurt" if delta < -band else "no effect"


def verdict_lines(result: CompareResult, look: Lookup | None = None) -> list[str]:
    """One paragraph per synthetic source: raw and selected data against gold alone, on the test split."""
    look = look or Lookup(result)
    data = result.data
    if "gold" not in data.sets:
        return []
    lines = []
    for role in (*SYNTHETIC_SOURCES, REVIEWED):
        raw = f"gold+{role}"
        if raw not in data.sets:
            continue
        parts = []
        for variant, label in ((raw, f"raw {role}"), (raw + SELECTED_SUFFIX, f"selected {role}")):
            if variant not in data.sets:
                continue
            per_model = []
            for name in result.model_names:
                g, v = look.f1(name, "gold", "micro"), look.f1(name, variant, "micro")
                gm, vm = look.minority_f1(name, "gold", data.minority), look.minority_f1(name, variant, data.minority)
                text = (f"{name} {_effect(v - g, EFFECT_BAND)} overall (micro-F1 {g:.3f} → {v:.3f}) and "
                        f"{_effect(vm - gm, MINORITY_BAND)} on the minority categories ({gm:.3f} → {vm:.3f})")
                if variant.endswith(SELECTED_SUFFIX) and data.selection is not None:
                    choice = data.selection.choices.get((selection_family(_family(name)), role))
                    if choice is not None:
                        text += f" (setting {choice.setting.name}: {choice.rows_kept} of {choice.rows_total} rows"
                        text += f", weight {choice.setting.weight:g})" if not choice.setting.takes_nothing else ")"
                per_model.append(text)
            parts.append(f"{label}: " + "; ".join(per_model))
        lines.append(f"{role.capitalize()} against gold alone on the frozen test split: " + ". ".join(parts) + ".")
    if lines and data.selection is not None and data.selection.enabled and data.selection.choices:
        lines.append(f"Selection and thresholds were chosen on {data.selection.folds}-fold cross-validation over gold "
                     f"train only; the test split chose nothing. A setting is kept only when it raises CV micro-F1 "
                     f"and lowers neither micro-F1 by more than {MICRO_MARGIN} nor any category's F1 by more than "
                     f"{CATEGORY_MARGIN}; otherwise the selected set is gold alone. 'No effect' = within "
                     f"±{EFFECT_BAND} micro-F1 (±{MINORITY_BAND} for the minority mean).")
    return lines


def _family(name: str) -> str:
    return "encoder" if name.startswith("encoder") else name


def _threshold_line(selection) -> str:
    cap = "" if selection is None or selection.max_labels is None else f", at most {selection.max_labels} categories per sentence"
    return ("per output, moved off 0.5 on CV folds of gold train only when the gain beats the fold noise, shrunk "
            f"toward 0.5 by support{cap}")


def data_lines(result: CompareResult, notes: bool = True) -> list[str]:
    d, o = result.data, result.options
    lines = [
        f"gold: {len(d.gold)} sentences ({o.gold_dir}); frozen test split {d.split.path}: "
        f"{len(d.gold_train)} train / {len(d.gold_test)} test (split seed {d.split.seed}, fraction {d.split.test_fraction})",
    ]
    if len(d.negatives):
        lines.append(f"negatives: {len(d.negatives)} 'none' sentences added to gold train only ({o.negatives})")
    for role in SYNTHETIC_SOURCES:
        folders = o.silver_dirs if role == "silver" else o.bronze_dirs
        if folders:
            lines.append(f"{role}: {len(d.synthetic[role])} sentences after leakage removal "
                         f"({', '.join(str(f) for f in folders)})")
    if d.review.get("reviewed") or d.review.get("rejected"):
        rejected = ", ".join(f"{role} {n}" for role, n in d.review["rejected"].items()) or "none"
        lines.append(f"clinician review: rows reviewers rejected, left out of every set: {rejected}; reviewed set "
                     f"(`{REVIEWED}`): {len(d.synthetic[REVIEWED])} silver rows accepted or corrected (after leakage "
                     f"removal; {d.review.get('disagreed', 0)} where reviewers disagree left out)")
    lines.append(f"synthetic sentences equal to a gold test sentence, removed from training: {d.leakage.total}"
                 + (f" (listed in leakage_removed.csv), e.g. {d.leakage.examples[0]!r}" if d.leakage.examples else ""))
    cap = "none" if o.synthetic_cap_ratio is None else f"{o.synthetic_cap_ratio} x gold train"
    lines.append(f"models: {', '.join(result.model_names)}; seeds: {', '.join(map(str, o.seeds))}; "
                 f"raw sets: synthetic cap {cap}, weight {o.synthetic_weight}; `-sel` sets: rows and weight chosen "
                 f"on CV ({'on' if o.select else 'off'}); thresholds: "
                 f"{_threshold_line(d.selection) if o.tune_thresholds else '0.5'}; probabilities calibrated per "
                 "output on out-of-fold CV scores (sigmoid)")
    lines.append(f"minority categories (lowest gold support, marked ★): {', '.join(d.minority)}")
    if d.selection is not None and d.selection.folds:
        lines.append(f"wall time: {result.seconds:.1f} s (of which choosing on CV: {d.selection.seconds:.1f} s)")
    else:
        lines.append(f"wall time: {result.seconds:.1f} s")
    return lines + ([f"note: {n}" for n in d.notes] if notes else [])


@dataclass
class Tables:
    """Everything the three renderings show, built once."""

    verdict: list[str]
    data: list[str]
    terminal: list[Table]  # compact cells
    report: list[Table]  # the same, with spaced ± and the selection grids


def build_tables(result: CompareResult) -> Tables:
    look = Lookup(result)
    short = short_names(list(result.data.gold_support))
    per_model_terminal, per_model_report = [], []
    for name in result.model_names:
        per_model_terminal += [overview_table(result, look, name, "±"), category_table(result, look, name, short)]
        per_model_report += [overview_table(result, look, name, " ± "), category_table(result, look, name, short)]
    selection = [t for t in [selection_table(result)] if t is not None]
    return Tables(
        verdict_lines(result, look), data_lines(result),
        terminal=[*selection, *per_model_terminal, support_table(result, short)],
        report=[*selection, *per_model_report, support_table(result, short), binary_table(result, look),
                *grid_tables(result)],
    )


# ------------------------------------------------------------------------------------------- renderers


def print_tables(result: CompareResult, console, tables: Tables | None = None) -> None:
    from rich import box
    from rich.table import Table as RichTable

    tables = tables or build_tables(result)
    for line in data_lines(result, notes=False):  # notes were printed when the run started
        console.print(line, highlight=False)
    for table in tables.terminal:
        rich = RichTable(title=table.title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1),
                         collapse_padding=True)
        for i, column in enumerate(table.header):
            rich.add_column(column, justify="left" if i == 0 else "right", no_wrap=i == 0)
        for i, cells in enumerate(table.rows):
            if i in table.breaks:
                rich.add_section()
            bold = table.bold[i] if table.bold else set()
            rich.add_row(*[f"[bold green]{c}[/]" if j in bold else c for j, c in enumerate(cells)],
                         style="yellow" if i in table.shaded else None)
        console.print(rich)
    for line in tables.verdict:
        console.print(line, highlight=False, markup=False)


def markdown_report(result: CompareResult, tables: Tables, chart_name: str = CHART_FILE) -> str:
    out = ["# Gold vs silver vs bronze: classifier comparison", ""]
    if tables.verdict:
        out += ["## Verdict", ""] + [f"{line}\n" for line in tables.verdict]
    out += [f"- {line}" for line in tables.data] + [""]
    out.append("Cells are F1 mean ± std over seeds (± only where seeds differ); **bold** = best training set for the "
               "column; ★ = minority category (lowest gold support). `-sel` sets hold the synthetic rows chosen on "
               "cross-validation over gold train. The TF-IDF and frozen-encoder heads are deterministic: seeds only "
               "change the capped synthetic sample of raw sets and fine-tuning.")
    out.append("")
    for table in tables.report:
        out += [f"## {table.title}", ""]
        out.append("| " + " | ".join(table.header) + " |")
        out.append("|" + "---|" * len(table.header))
        for i, cells in enumerate(table.rows):
            bold = table.bold[i] if table.bold else set()
            out.append("| " + " | ".join(f"**{c}**" if j in bold and c else c for j, c in enumerate(cells)) + " |")
        out.append("")
    out += ["## Per-category F1 by training set", "", f"![per-category F1]({chart_name})", "",
            "Full metrics (precision, recall, F1, support per seed): `metrics.csv` / `metrics.parquet`; "
            "mean and std over seeds: `summary.csv` / `summary.parquet`; what was chosen and why: `config.json` "
            "(`selection`).", ""]
    return "\n".join(out)


def html_report(result: CompareResult, tables: Tables, chart_png: bytes) -> str:
    e = html.escape
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Classifier comparison</title><style>",
             "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}",
             "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child,th:first-child{text-align:left}",
             "tr.minority{background:#fff6d6}td.best{font-weight:bold;color:#106010}p.verdict{max-width:60em}",
             "</style></head><body><h1>Gold vs silver vs bronze: classifier comparison</h1>"]
    if tables.verdict:
        parts.append("<h2>Verdict</h2>" + "".join(f"<p class='verdict'>{e(line)}</p>" for line in tables.verdict))
    parts.append("<ul>" + "".join(f"<li>{e(line)}</li>" for line in tables.data) + "</ul>")
    parts.append("<p>Cells are F1 mean ± std over seeds (± only where seeds differ); bold = best training set for the "
                 "column; ★ = minority category (lowest gold support); <code>-sel</code> = synthetic rows chosen on "
                 "cross-validation over gold train.</p>")
    for table in tables.report:
        parts.append(f"<h2>{e(table.title)}</h2><table><tr>" + "".join(f"<th>{e(c)}</th>" for c in table.header) + "</tr>")
        for i, cells in enumerate(table.rows):
            bold = table.bold[i] if table.bold else set()
            tds = "".join(f"<td class='best'>{e(c)}</td>" if j in bold else f"<td>{e(c)}</td>" for j, c in enumerate(cells))
            parts.append(f"<tr{' class=minority' if i in table.shaded else ''}>{tds}</tr>")
        parts.append("</table>")
    image = base64.b64encode(chart_png).decode("ascii")  # self-contained: one file to share
    parts.append(f"<h2>Per-category F1 by training set</h2><img alt='per-category F1' style='max-width:100%' "
                 f"src='data:image/png;base64,{image}'></body></html>")
    return "\n".join(parts)


def bar_chart(result: CompareResult) -> bytes:
    """The per-category F1 chart as PNG bytes (drawn once: saved to disk and embedded in the HTML)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def config_json(result: CompareResult, tables: Tables) -> dict:
    o, d = result.options, result.data
    config = {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) and v and isinstance(v[0], Path) else v)
              for k, v in vars(o).items()}
    config.update(sets_run=d.sets, notes=d.notes, minority=d.minority, gold_fingerprint=d.split.fingerprint,
                  leakage_removed=d.leakage.removed, negatives_added=len(d.negatives),
                  seconds=round(result.seconds, 1), model_dirs=[str(p) for p in result.model_dirs],
                  selection=None if d.selection is None else d.selection.to_json(), review=d.review,
                  verdict=tables.verdict)
    return config


def write_report(result: CompareResult, console=None, into: Path | None = None) -> dict[str, Path]:
    """Write every artefact (each file atomically) into `into`, the folder being built that becomes the output
    folder (default: the output folder itself); returns their paths by kind."""
    out = ensure_writable_dir(Path(into or result.options.out_dir))
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
    tables = build_tables(result)
    atomic_write_parquet(result.metrics, paths["metrics_parquet"])
    atomic_write_bytes(paths["metrics_csv"], result.metrics.write_csv().encode("utf-8"))
    atomic_write_parquet(result.summary, paths["summary_parquet"])
    atomic_write_bytes(paths["summary_csv"], result.summary.write_csv().encode("utf-8"))
    leakage = pl.DataFrame(result.data.leakage.rows, schema={"source": pl.Utf8, "text": pl.Utf8}, orient="row")
    atomic_write_bytes(paths["leakage"], leakage.write_csv().encode("utf-8"))
    chart = bar_chart(result)
    atomic_write_bytes(paths["chart"], chart)
    atomic_write_bytes(paths["markdown"], markdown_report(result, tables, CHART_FILE).encode("utf-8"))
    atomic_write_bytes(paths["html"], html_report(result, tables, chart).encode("utf-8"))
    atomic_write_json(paths["config"], config_json(result, tables))
    if console is not None:
        print_tables(result, console, tables)
        final = Path(result.options.out_dir)  # where the files are once the built folder is swapped in
        console.print(f"report: {final / 'report.md'} and {final / 'report.html'}; metrics: {final / 'metrics.csv'}",
                      highlight=False)
    return paths

