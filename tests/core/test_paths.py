"""The project's folders are found from the package itself, whatever the working directory."""

import subprocess
import sys

from factory.core import paths


def test_the_paths_point_into_this_checkout():
    assert (paths.PROJECT_ROOT / "factory" / "core" / "paths.py").is_file()
    assert (paths.PROMPTS_DIR / "label_system.j2").is_file()
    assert (paths.SCHEMAS_DIR / "label.schema.json").is_file()
    assert paths.DEFAULT_TAXONOMY.is_file() and paths.DEFAULT_TAXONOMY.parent == paths.SCHEMAS_DIR
    for folder in (paths.MODELS_DIR, paths.RUNS_DIR, paths.CACHE_DIR, paths.DEMO_DIR):
        assert folder.parent == paths.DATA_DIR == paths.PROJECT_ROOT / "data"


def test_they_do_not_depend_on_the_working_directory(tmp_path):
    printed = subprocess.run([sys.executable, "-c", "from factory.core.paths import PROJECT_ROOT; print(PROJECT_ROOT)"],
                             cwd=tmp_path, capture_output=True, text=True, timeout=60,
                             env={"PYTHONPATH": str(paths.PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.strip() == str(paths.PROJECT_ROOT)
