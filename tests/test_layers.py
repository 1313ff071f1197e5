"""The package's import direction: cli -> {bench, quality} -> trainer -> stages -> engines -> data -> core.

A module may import its own layer and any layer below it, never one above. Imports inside functions count
too: a lazy import against the direction is still a dependency against it.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "factory"
# Lower index = lower layer. Layers on one row may not import each other.
LAYERS = [["core"], ["data"], ["engines"], ["stages"], ["trainer"], ["quality"], ["bench", "review"], ["cli"]]
RANK = {name: rank for rank, row in enumerate(LAYERS) for name in row}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "factory" else None


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "factory":
                found += [(node.lineno, f"factory.{alias.name}") for alias in node.names]
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        own = layer_of(".".join(relative.parts))
        if own is None or own not in RANK:
            continue
        for line, module in imports_of(path):
            target = layer_of(module)
            if target is None or target == own:
                continue
            if target not in RANK or RANK[target] >= RANK[own]:
                bad.append(f"{relative}.py:{line} ({own}) imports {module} ({target})")
    return bad


def test_every_module_sits_in_a_known_layer():
    top = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p.is_dir() and (p / "__init__.py").exists())}
    assert top <= set(RANK), f"modules outside every layer: {sorted(top - set(RANK))}"


def test_no_import_against_the_layer_direction():
    assert violations() == []


def test_the_check_catches_an_upward_import(tmp_path):
    package = tmp_path / "factory"
    (package / "data").mkdir(parents=True)
    (package / "data" / "bad.py").write_text("def f():\n    from factory.stages.label import Labeler\n")
    assert violations(package) == ["factory/data/bad.py:2 (data) imports factory.stages.label (stages)"]
