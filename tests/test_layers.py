"""The package's import direction: cli -> {bench, review} -> {api, recipes} -> quality -> trainer -> stages -> engines -> data -> core.

A module may import its own layer and any layer below it, never one above. Imports inside functions count
too: a lazy import against the direction is still a dependency against it. So do relative imports
(`from ..stages import label`), imports by name at run time (`importlib.import_module("factory.stages.x")`,
`__import__`) and `module:callable` engine names ("factory.engines.trivial:TrivialEngine"), which
load_engine and the pools import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "factory"
# Lower index = lower layer. Layers on one row may not import each other.
LAYERS = [["core"], ["data"], ["engines"], ["stages"], ["trainer"], ["quality"], ["api", "recipes"], ["bench", "review"], ["cli"]]
RANK = {name: rank for rank, row in enumerate(LAYERS) for name in row}


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "factory" else None


# "factory.engines.trivial:TrivialEngine": a `module:callable` name that load_engine and the pools import
ENGINE_NAME = re.compile(r"^(factory(?:\.\w+)+):\w+$")


def _package_of(module: str, is_package: bool) -> list[str]:
    """The package a module's relative imports start from: itself for an __init__, else its parent."""
    parts = module.split(".")
    return parts if is_package else parts[:-1]


def _relative(package: list[str], level: int, name: str | None) -> str | None:
    """`from <level dots><name> import ...` inside `package`, as an absolute module name."""
    if level - 1 > len(package) - 1:
        return None  # beyond the top-level package: Python refuses it, not a layer question
    base = package[: len(package) - (level - 1)]
    return ".".join([*base, name] if name else base)


def _dynamic_target(node: ast.Call, package: list[str]) -> str | None:
    """The module an `importlib.import_module(...)` or `__import__(...)` call names, when it is a literal."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
    if name not in ("import_module", "__import__") or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
        return None
    target = first.value
    if target.startswith("."):  # import_module(".label", package="factory.stages") or (..., __package__)
        anchor = next((k.value for k in node.keywords if k.arg == "package"), node.args[1] if len(node.args) > 1 else None)
        if isinstance(anchor, ast.Constant) and isinstance(anchor.value, str):
            base = anchor.value.split(".")
        elif isinstance(anchor, ast.Name) and anchor.id == "__package__":
            base = package
        else:
            return None
        level = len(target) - len(target.lstrip("."))
        return _relative(base, level, target.lstrip(".") or None)
    return target


def imports_of(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`, the text of module `module`: plain,
    relative, lazy (inside functions), dynamic (import_module, __import__) and `module:callable` names."""
    tree = ast.parse(source)
    package = _package_of(module, is_package)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module if node.level == 0 else _relative(package, node.level, node.module)
            if base is None:
                continue
            found.append((node.lineno, base))
            # `from factory import stages`, `from .. import stages`: the names may be modules themselves
            if base.count(".") < 2:
                found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call):
            target = _dynamic_target(node, package)
            if target:
                found.append((node.lineno, target))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = ENGINE_NAME.match(node.value)
            if match:
                found.append((node.lineno, match.group(1)))
    return found


def violations(root: Path = PACKAGE) -> list[str]:
    bad = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).with_suffix("")
        is_package = relative.name == "__init__"
        name = ".".join(relative.parts[:-1] if is_package else relative.parts)
        own = layer_of(".".join(relative.parts))
        if own is None or own not in RANK:
            continue
        for line, module in imports_of(path.read_text(encoding="utf-8"), name, is_package):
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


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    """A throwaway `factory` package holding `files` (path under factory/ -> source)."""
    package = tmp_path / "factory"
    for name, source in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    return package


def test_the_check_catches_an_upward_import(tmp_path):
    package = _plant(tmp_path, {"data/bad.py": "def f():\n    from factory.stages.label import Labeler\n"})
    assert violations(package) == ["factory/data/bad.py:2 (data) imports factory.stages.label (stages)"]


def test_the_check_catches_upward_relative_imports(tmp_path):
    package = _plant(tmp_path, {
        "data/bad.py": "from ..stages import label\n",
        "data/worse.py": "def f():\n    from ..stages.label import Labeler\n",
        "data/__init__.py": "from .. import trainer\n",
        "core/sub/deep.py": "from ...engines.base import Engine\n",
        "data/fine.py": "from . import store\nfrom .store import x\nfrom ..core import errors\n",
    })
    assert violations(package) == [
        "factory/core/sub/deep.py:1 (core) imports factory.engines.base (engines)",
        "factory/data/__init__.py:1 (data) imports factory.trainer (trainer)",
        "factory/data/bad.py:1 (data) imports factory.stages (stages)",
        "factory/data/bad.py:1 (data) imports factory.stages.label (stages)",
        "factory/data/worse.py:2 (data) imports factory.stages.label (stages)",
    ]


def test_the_check_catches_imports_by_name_at_run_time(tmp_path):
    package = _plant(tmp_path, {
        "engines/bad.py": "import importlib\ndef f():\n    return importlib.import_module('factory.stages.label')\n",
        "engines/alias.py": "from importlib import import_module\nx = import_module('.runner', package='factory.stages')\n",
        "data/dunder.py": "m = __import__('factory.quality.phi')\n",
        "core/spec.py": "ENGINE = 'factory.engines.trivial:TrivialEngine'\n",
        "stages/fine.py": "import importlib\nm = importlib.import_module('factory.engines.trivial')\nn = importlib.import_module(name)\n",
    })
    assert violations(package) == [
        "factory/core/spec.py:1 (core) imports factory.engines.trivial (engines)",
        "factory/data/dunder.py:1 (data) imports factory.quality.phi (quality)",
        "factory/engines/alias.py:2 (engines) imports factory.stages.runner (stages)",
        "factory/engines/bad.py:3 (engines) imports factory.stages.label (stages)",
    ]


def test_relative_imports_resolve_from_the_module_or_its_package():
    assert imports_of("from . import store\n", "factory.data.rows") == [(1, "factory.data"), (1, "factory.data.store")]
    assert imports_of("from . import store\n", "factory.data", is_package=True) == [(1, "factory.data"),
                                                                                   (1, "factory.data.store")]
    assert imports_of("from ..stages.label import Labeler\n", "factory.trainer.compare") == [(1, "factory.stages.label")]
