"""`tests/` mirrors the package: every module `factory/<path>/<name>.py` has `tests/<path>/test_<name>.py`.

The rule is the same for every folder, private ones included: `factory/core/_guard/sitecustomize.py` is tested
by `tests/core/_guard/test_sitecustomize.py`. A module may have more test files beside its mirror (a
scenario spread over several modules, a slow real-engine file); the mirror is where its own tests start.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Modules that cannot have a mirrored test file, each with the reason. Kept empty on purpose: a module too
# thin to test (a table of constants) still has a behaviour worth one test; add an entry only with a comment
# saying why no test of it can fail.
ALLOWED_WITHOUT_MIRROR: dict[str, str] = {}


def modules(root: Path) -> list[str]:
    """Every module of `root/factory` as a posix path relative to `root`; package `__init__` files are not
    modules of their own (what they hold is tested through the modules that use it)."""
    package = root / "factory"
    return sorted(p.relative_to(root).as_posix() for p in package.rglob("*.py")
                  if p.name != "__init__.py" and "__pycache__" not in p.parts)


def mirror_of(module: str) -> str:
    """factory/<path>/<name>.py -> tests/<path>/test_<name>.py (every folder kept, private ones too)."""
    parts = Path(module).parts
    assert parts[0] == "factory" and module.endswith(".py"), module
    return Path("tests", *parts[1:-1], f"test_{parts[-1]}").as_posix()


def problems(root: Path, allowed: dict[str, str] | set[str] = ()) -> list[str]:
    """One line per module without its mirror (unless allowed), and per allowance that names no module."""
    found = modules(root)
    out = [f"{module}: no {mirror_of(module)}" for module in found
           if module not in allowed and not (root / mirror_of(module)).is_file()]
    out += [f"{module}: listed in ALLOWED_WITHOUT_MIRROR but not a module of factory/"
            for module in sorted(set(allowed) - set(found))]
    return out


def test_every_module_has_a_mirrored_test_file():
    found = problems(ROOT, ALLOWED_WITHOUT_MIRROR)
    assert not found, "tests/ must mirror factory/:\n" + "\n".join(found)


def _tree(root: Path, files: list[str]) -> Path:
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return root


def test_the_guard_reports_a_planted_module_without_a_mirror(tmp_path):
    root = _tree(tmp_path, [
        "factory/__init__.py", "factory/core/__init__.py", "factory/core/errors.py", "tests/core/test_errors.py",
        "factory/core/_guard/sitecustomize.py", "tests/core/_guard/test_sitecustomize.py",
        "factory/stages/planted.py", "factory/stages/__pycache__/planted.cpython-311.py",
    ])
    assert modules(root) == ["factory/core/_guard/sitecustomize.py", "factory/core/errors.py", "factory/stages/planted.py"]
    assert problems(root) == ["factory/stages/planted.py: no tests/stages/test_planted.py"]
    # a test file elsewhere (not the mirror) does not count
    _tree(root, ["tests/test_planted.py", "tests/core/test_planted.py"])
    assert problems(root) == ["factory/stages/planted.py: no tests/stages/test_planted.py"]
    assert problems(root, allowed={"factory/stages/planted.py": "why"}) == []
    _tree(root, ["tests/stages/test_planted.py"])
    assert problems(root) == []


def test_a_private_folder_is_mirrored_as_it_is(tmp_path):
    root = _tree(tmp_path, ["factory/core/_guard/sitecustomize.py", "tests/core/test_sitecustomize.py"])
    assert mirror_of("factory/core/_guard/sitecustomize.py") == "tests/core/_guard/test_sitecustomize.py"
    assert problems(root) == ["factory/core/_guard/sitecustomize.py: no tests/core/_guard/test_sitecustomize.py"]


def test_an_allowance_that_names_no_module_fails(tmp_path):
    root = _tree(tmp_path, ["factory/bench.py", "tests/test_bench.py"])
    assert problems(root, allowed={"factory/gone.py": "why"}) == [
        "factory/gone.py: listed in ALLOWED_WITHOUT_MIRROR but not a module of factory/"]
