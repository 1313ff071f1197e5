"""`bin/generate run RECIPE.toml` (factory/cli/recipe.py): a refused recipe is one line and changes nothing; a good
one runs its stages in this process, in order, resumably, sharing the run folder. Loading, keys and the stage
graph themselves: tests/test_recipes.py."""

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from factory.cli.main import main
from tests.cli.helpers import generate_in_process, tree_hashes

ROOT = Path(__file__).resolve().parents[2]


def _recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _graph_recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(f'[run]\nfolder = "{tmp_path / "run"}"\n' + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("stages, fragment", [
    ('[[stage]]\ncommand = "check"\nrun = "{run}"\ndataset = "bronze"\n', "stage 1 (check) needs bronze at"),
    ('[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "compare"\ngold = "{run}/gold"\n',
     "stage 2 (compare) needs gold at"),
])
def test_a_stage_whose_input_no_earlier_stage_makes_is_refused_before_anything_runs(tmp_path, stages, fragment):
    (tmp_path / "run").mkdir()
    recipe = _graph_recipe(tmp_path, stages)
    before = tree_hashes(tmp_path)
    result = generate_in_process("run", recipe)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: recipe "), result.stderr
    assert fragment in lines[0] and "no earlier stage makes" in lines[0]
    assert tree_hashes(tmp_path) == before and "stage 1/" not in result.stdout


def test_a_bad_key_names_the_allowed_ones_and_exits_2(tmp_path):
    path = _recipe(tmp_path, '[[stage]]\ncommand = "export"\nrun = "r"\nout = "o"\nlicence = "CC0"\n')
    result = subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), "run", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: recipe stage 1 (export): unknown key 'licence'")
    assert "license" in lines[0] and "replace" in lines[0]


def test_a_recipe_runs_its_stages_in_order_and_resumes(tmp_path, toy_gold_file):
    """gold import then compare on toy data; the rerun replaces the gold folder it wrote (its own output)."""
    recipe = _recipe(tmp_path, f'''
[run]
folder = "{tmp_path / 'run'}"

[[stage]]
command = "gold import"
path = "{toy_gold_file}"
out = "{{run}}/gold"

[[stage]]
command = "compare"
gold = "{{run}}/gold"
models = "tfidf"
seeds = "0"
out = "{{run}}/experiment"
''')
    for _ in range(2):
        result = CliRunner().invoke(main, ["run", str(recipe)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "stage 1/2: gold import" in result.output and "stage 2/2: compare" in result.output
        assert "note: compare --models is deprecated; use --classifiers" in result.output  # an older key, read
    assert (tmp_path / "run" / "gold" / "part-00000.parquet").is_file()
    assert (tmp_path / "run" / "experiment" / "report.md").is_file()


def test_stages_of_a_recipe_share_one_run_folder(tmp_path, notes_dir, taxonomy, make_context):
    """Each stage's command holds the run lock; the next stage in the same process must get it (the demo's
    label then synthesize into one --out). dedup takes the lock too: run it twice on one run folder."""
    from tests.quality_helpers import make_run

    run = make_run(notes_dir, taxonomy, make_context, tmp_path / "run")
    recipe = _recipe(tmp_path, f'''
[run]
folder = "{run}"

[[stage]]
command = "dedup"
run = "{{run}}"

[[stage]]
command = "check-phi"
run = "{{run}}"
no_ner = true
''')
    result = CliRunner().invoke(main, ["run", str(recipe)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "stage 2/2: check-phi" in result.output and (run / "bronze_phi").is_dir()
