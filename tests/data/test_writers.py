"""One owner for the run folder: only the data layer writes Parquet, and only the runner (and the few places
that open a run for it) opens a run folder or writes its manifest. Every other Parquet write is a command's
own output folder, named here with the function that writes it.

The check reads the package's syntax trees (calls through an imported alias count), and a planted package
shows it fails on each kind of violation."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from factory.data.run_folder import Run
from factory.quality.strategy_eval import write_strategy_results
from tests.cli.helpers import tree_hashes

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "factory"

# kind of write -> where it may happen: a folder, a module, or `module::function` (the call inside that function)
ALLOWED = {
    "Run.open": {
        "factory/data/",
        "factory/stages/runner.py::run_local",  # the executor of the tasks that ask no LLM
        "factory/stages/context.py::scratch_context",  # a temporary run, removed afterwards
        "factory/api.py::stage_context",  # the executor of the LLM stages
    },
    "ShardWriter": {"factory/data/", "factory/stages/runner.py"},
    "manifest": {"factory/data/", "factory/stages/runner.py::run_stage"},
    "parquet": {
        "factory/data/",
        "factory/trainer/report.py::write_report",  # compare/train report: its own output folder
        "factory/trainer/predict.py::predict",  # predictions: its own output folder
        "factory/quality/privacy.py::export_bundle",  # the export bundle: its own output folder
        "factory/bench.py",  # the benchmark's synthetic notes, its own input in a temporary folder
    },
}
_MANIFEST = {"record_stage", "mark_running", "mark_interrupted", "bind_identity"}
_PARQUET_METHODS = {"write_parquet", "sink_parquet", "write_table", "to_parquet"}
_PARQUET_FUNCTIONS = {"atomic_write_parquet", "atomic_write_file"}


def _kind(call: ast.Call, aliases: dict[str, str]) -> str | None:
    func = call.func
    if isinstance(func, ast.Attribute):
        if func.attr == "open" and isinstance(func.value, ast.Name) and aliases.get(func.value.id) == "Run":
            return "Run.open"
        name = func.attr
        if name in _MANIFEST:
            return "manifest"
        if name in _PARQUET_METHODS:
            return "parquet"
    elif isinstance(func, ast.Name):
        name = aliases.get(func.id, func.id)
    else:
        return None
    if name == "ShardWriter":
        return "ShardWriter"
    if name in _PARQUET_FUNCTIONS:
        return "parquet"
    return None


class _Finder(ast.NodeVisitor):
    def __init__(self) -> None:
        self.aliases: dict[str, str] = {"Run": "Run"}
        self.functions: list[str] = []
        self.found: list[tuple[int, str, tuple[str, ...]]] = []

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.aliases[alias.asname or alias.name] = alias.name

    def _function(self, node) -> None:
        self.functions.append(node.name)
        self.generic_visit(node)
        self.functions.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_Call(self, node: ast.Call) -> None:
        kind = _kind(node, self.aliases)
        if kind:
            self.found.append((node.lineno, kind, tuple(self.functions)))
        self.generic_visit(node)


def _allowed(module: str, functions: tuple[str, ...], kind: str) -> bool:
    for place in ALLOWED[kind]:
        path, _, function = place.partition("::")
        if (module.startswith(path) if path.endswith("/") else module == path) and (not function or function in functions):
            return True
    return False


def violations(package: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(package.rglob("*.py")):
        module = path.relative_to(package.parent).as_posix()
        finder = _Finder()
        finder.visit(ast.parse(path.read_text(encoding="utf-8")))
        bad += [f"{module}:{line} {kind}" for line, kind, functions in finder.found
                if not _allowed(module, functions, kind)]
    return bad


def test_only_the_data_layer_and_the_executors_write_a_run_folder():
    assert violations() == []


def test_every_allowed_place_still_exists():
    """An allowance for code that moved or went is a hole: each must name a module (and function) that exists."""
    for places in ALLOWED.values():
        for place in places:
            path, _, function = place.partition("::")
            target = PACKAGE.parent / path
            assert target.exists(), place
            if function:
                tree = ast.parse(target.read_text(encoding="utf-8"))
                assert any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function
                           for n in ast.walk(tree)), place


def test_the_check_fails_on_planted_violations(tmp_path):
    package = tmp_path / "factory"
    files = {
        "quality/bad.py": ("from factory.data.store import ShardWriter\n"
                           "def f(run, frame):\n"
                           "    frame.write_parquet(run.out / 'silver' / 'x.parquet')\n"
                           "    ShardWriter(run.out / 'silver', {})\n"
                           "    run.record_stage('silver', {})\n"),
        "review/alias.py": ("from factory.data.store import atomic_write_parquet as save\n"
                            "from factory.data.run_folder import Run as R\n"
                            "save(frame, path)\nR.open(path)\n"),
        "stages/context.py": ("def scratch_context():\n    Run.open(tmp)\n"
                              "def elsewhere():\n    Run.open(out)\n"),
        "trainer/predict.py": "def predict():\n    atomic_write_parquet(f, p)\ndef other():\n    atomic_write_parquet(f, p)\n",
        "data/fine.py": "def g(frame, p):\n    ShardWriter(p, {}).write([])\n    frame.write_parquet(p)\n    Run.open(p)\n",
    }
    for name, source in files.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(source, encoding="utf-8")
    assert violations(package) == [
        "factory/quality/bad.py:3 parquet",
        "factory/quality/bad.py:4 ShardWriter",
        "factory/quality/bad.py:5 manifest",
        "factory/review/alias.py:3 parquet",
        "factory/review/alias.py:4 Run.open",
        "factory/stages/context.py:4 Run.open",
        "factory/trainer/predict.py:4 parquet",
    ]


# ----------------------------------------------------------------- a report written into a run folder

KILLED_WHILE_WRITING = """
import os, signal, sys
from pathlib import Path
from factory.data import store
from factory.quality.strategy_eval import write_strategy_results
store.atomic_write_parquet = lambda frame, path: os.kill(os.getpid(), signal.SIGKILL)  # JSON and text written
write_strategy_results(Path(sys.argv[1]), {"json": {"micro_f1": 0.0}}, {"text": ["b"], "gold": [["none"]]}, "# two", {})
"""


def test_the_strategies_report_in_a_run_folder_is_replaced_whole_or_not_at_all(tmp_path):
    run = tmp_path / "run"
    with Run.open(run):  # what `quality strategies --out <run>` opens; no stage has written a manifest yet
        pass
    out = write_strategy_results(run / "strategies", {"json": {"micro_f1": 0.5}}, {"text": ["a"], "gold": [["none"]]},
                                 "# one\n", {"model": "m"})
    assert sorted(p.name for p in out.iterdir()) == ["predictions.parquet", "strategies.json", "strategies.md",
                                                     "written-by.json"]
    assert pl.read_parquet(out / "predictions.parquet")["text"].to_list() == ["a"]
    before = tree_hashes(out)
    killed = subprocess.run([sys.executable, "-c", KILLED_WHILE_WRITING, str(out)], cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert killed.returncode == -9
    assert tree_hashes(out) == before  # the earlier report, whole
    with Run.open(run):  # the run (with the killed build beside the report) still opens
        pass
    write_strategy_results(out, {"json": {"micro_f1": 0.7}}, {"text": ["c"], "gold": [["none"]]}, "# three\n", {})
    assert (out / "strategies.md").read_text() == "# three\n"  # a rerun replaces its own report
