"""`bin/generate run RECIPE.toml`: recipes validated before any stage runs, keys taken from the commands."""

import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from factory.cli.main import main
from factory.cli.recipe import command_line, load_recipe, recipe_parameters, resolve_command
from factory.core.errors import FactoryError

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ["label", "synthesize", "check", "consistency", "dedup", "check-phi", "export", "gold import", "compare",
            "train", "predict", "quality", "quality strategies", "review"]


def _recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", PIPELINE)
def test_every_option_of_every_stage_is_a_recipe_key(name):
    command = resolve_command(main, name)
    keys = set(recipe_parameters(command))
    for param in command.params:
        if isinstance(param, click.Option) and param.name not in ("help",):
            flag = next(o for o in param.opts if o.startswith("--"))
            assert flag[2:].replace("-", "_") in keys, (name, flag)


def test_the_demo_recipe_is_the_papers_experiment_in_pipeline_order():
    planned = load_recipe(ROOT / "recipes" / "demo.toml", main, folder="data/runs/x")
    lines = {stage.name: command_line(stage.command, stage.values) for stage in planned}
    assert list(lines) == ["gold import", "label", "synthesize", "check", "consistency", "check-phi", "export", "compare"]
    # silver takes its exemplars from the run's gold (train split only) with weights chosen on gold train
    assert lines["label"][lines["label"].index("--gold") + 1] == "data/runs/x/gold"
    assert "--combine-weight" in lines["label"] and "--strategy" in lines["label"]
    assert lines["synthesize"] == ["--per-category", "20", "--out", "data/runs/x"]
    assert lines["export"] == ["--run", "data/runs/x", "--out", "data/runs/x/share", "--replace"]
    assert lines["gold import"] == ["--out", "data/runs/x/gold", "data/demo/gold.jsonl"]
    compare = lines["compare"]
    assert compare[compare.index("--gold") + 1] == "data/runs/x/gold"
    assert compare[compare.index("--silver") + 1] == "data/runs/x/silver"


@pytest.mark.parametrize("text, message", [
    ('[[stage]]\ncommand = "synthesize"\nper_categry = 3\n',
     "recipe stage 1 (synthesize): unknown key 'per_categry'; allowed: "),
    ('[[stage]]\ncommand = "synthesize"\nper_category = "many"\n', "recipe stage 1 (synthesize): key 'per_category'"),
    ('[[stage]]\ncommand = "label"\nstrategy = "magic"\nnotes = "x"\n', "key 'strategy'"),
    ('[[stage]]\ncommand = "labell"\n', "unknown command 'labell'; known: "),
    ('[[stage]]\ncommand = "gold"\n', "'gold' is a group"),
    ('[[stage]]\nper_category = 3\n', 'needs command = "..."'),
    ('[[stage]]\ncommand = "label"\nout = "{run}"\nnotes = "n"\n', "uses {run} but no [run] folder"),
    ('[stages]\n', "unknown table(s) stages"),
    ('[[stage]\n', "not valid TOML"),
])
def test_a_bad_recipe_is_one_error_before_anything_runs(tmp_path, text, message):
    with pytest.raises(FactoryError, match=None) as caught:
        load_recipe(_recipe(tmp_path, text), main)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


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
