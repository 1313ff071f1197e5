"""Commands generated from specs (factory/core/specs.py): each flag declared once, older command lines and
recipes still accepted, and a recipe's stage graph checked before the first stage runs."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from factory.cli import options
from factory.cli.main import main
from factory.cli.options import build_spec
from factory.cli.recipe import load_recipe
from factory.core import specs
from factory.core.errors import FactoryError
from tests.cli.helpers import generate_in_process, tree_hashes

ROOT = Path(__file__).resolve().parents[2]
LEGACY = ROOT / "tests" / "fixtures" / "legacy_cli"  # recipes/demo.toml and README's command lines at 48880b2


def _command_lines(text: str) -> list[str]:
    """`bin/generate ...` lines of a README, comments, `[optional]` parts and `...` left out, `<run>` filled."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("bin/generate "):
            continue
        line = line.split(" #")[0].replace("<run>", "r1").replace(" ...", "")
        while "[" in line and "]" in line:
            line = line[: line.index("[")] + line[line.index("]") + 1:]
        lines.append(line.strip())
    return lines


def _parse(line: str, monkeypatch):
    """Parse a command line as bin/generate does, up to the spec; paths are not looked at (they are the
    README's examples, not files here)."""
    for kind in (options.InputPath, options.NameOrFolder):
        monkeypatch.setattr(kind, "convert", lambda self, value, param, ctx: Path(value))
    args = shlex.split(line)[1:]
    command: click.Command = main
    while isinstance(command, click.Group) and args and args[0] in command.commands:
        command = command.commands[args.pop(0)]
    if "--help" in args:
        return None
    ctx = command.make_context(f"generate {line.split()[1]}", args)
    return build_spec(command.spec, ctx.params) if hasattr(command, "spec") else ctx


README_LINES = sorted(set(_command_lines((ROOT / "README.md").read_text(encoding="utf-8"))
                          + _command_lines((LEGACY / "readme_48880b2.txt").read_text(encoding="utf-8"))))


@pytest.mark.parametrize("line", README_LINES)
def test_every_readme_command_line_parses(line, monkeypatch):
    _parse(line, monkeypatch)  # a usage error (unknown option, bad value) raises here


def test_the_older_classifier_flags_still_work_with_one_note(monkeypatch, capsys):
    train = _parse("bin/generate train --set gold --model encoder --out m", monkeypatch)
    assert train.classifier == "encoder"
    predict = _parse("bin/generate predict --model data/models/clf --input s.txt", monkeypatch)
    assert predict.classifier_dir == Path("data/models/clf")
    compare = _parse("bin/generate compare --models tfidf", monkeypatch)
    assert compare.classifiers == "tfidf"
    notes = capsys.readouterr().err.splitlines()
    assert notes == ["note: train --model is deprecated; use --classifier (same value)",
                     "note: predict --model is deprecated; use --classifier-dir (same value)",
                     "note: compare --models is deprecated; use --classifiers (same value)"]
    assert _parse("bin/generate train --classifier encoder --out m", monkeypatch).classifier == "encoder"
    assert _parse("bin/generate label --notes n --model m", monkeypatch).model == Path("m")  # --model: the LLM
    assert not capsys.readouterr().err


def test_commands_take_their_spec_and_shared_flags_are_declared_once():
    assert {name for name in specs.COMMANDS} >= {"label", "gold import", "quality simulate-review", "run"}
    for name, spec in specs.COMMANDS.items():
        command = main
        for part in name.split():
            command = command.commands[part]
        assert command.spec is spec, name
    # one field group declares the engine options; each LLM command takes them, with its own sampling defaults
    assert specs.SynthesizeSpec.model_fields["temperature"].default == 0.8
    assert specs.LabelSpec.model_fields["temperature"].default == 0.0
    assert specs.SynthesizeSpec().nucleus == 0.95 and specs.LabelSpec(notes=Path("n")).nucleus == 1.0


def test_spec_choices_match_the_layers_that_own_them():
    from factory.engines import ENGINES
    from factory.quality.privacy import DEFAULT_LICENSE
    from factory.stages.strategies import STRATEGIES

    assert specs.STRATEGY_NAMES == STRATEGIES
    assert set(ENGINES) == set(specs.opt_of(specs.EngineFields.model_fields["engine"]).kind.values)
    assert specs.ExportSpec.model_fields["license"].default == DEFAULT_LICENSE


@pytest.mark.parametrize("recipe", [LEGACY / "demo_48880b2.toml", ROOT / "recipes" / "demo.toml"])
def test_the_old_and_new_demo_recipes_validate_and_their_stage_graph_holds(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the recipes name data/demo/... relative to the project
    planned = load_recipe(recipe, main, folder=str(tmp_path / "run"))
    assert [stage.name for stage in planned][-1] == "compare"
    assert all(isinstance(stage.spec, specs.Spec) for stage in planned)


def _recipe(tmp_path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(f'[run]\nfolder = "{tmp_path / "run"}"\n' + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("stages, fragment", [
    ('[[stage]]\ncommand = "check"\nrun = "{run}"\ndataset = "bronze"\n', "stage 1 (check) needs bronze at"),
    ('[[stage]]\ncommand = "consistency"\nrun = "{run}"\n', "stage 1 (consistency) needs silver at"),
    ('[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "compare"\ngold = "{run}/gold"\n',
     "stage 2 (compare) needs gold at"),
    ('[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "check"\nrun = "{run}"\n'
     'dataset = "silver"\n', "stage 2 (check) needs silver at"),
])
def test_a_stage_whose_input_no_earlier_stage_makes_is_refused_before_anything_runs(tmp_path, stages, fragment):
    (tmp_path / "run").mkdir()
    recipe = _recipe(tmp_path, stages)
    before = tree_hashes(tmp_path)
    result = generate_in_process("run", recipe)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: recipe "), result.stderr
    assert fragment in lines[0] and "no earlier stage makes" in lines[0]
    assert tree_hashes(tmp_path) == before and "stage 1/" not in result.stdout


def test_an_input_an_earlier_stage_makes_or_the_run_holds_passes(tmp_path):
    (tmp_path / "run" / "silver").mkdir(parents=True)
    recipe = _recipe(tmp_path, '[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "check"\n'
                               'run = "{run}"\n\n[[stage]]\ncommand = "consistency"\nrun = "{run}"\n')
    assert [s.name for s in load_recipe(recipe, main)] == ["synthesize", "check", "consistency"]


def test_a_recipe_missing_a_required_key_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(FactoryError, match=r"recipe stage 1 \(export\): missing key 'out'"):
        load_recipe(_recipe(tmp_path, '[[stage]]\ncommand = "export"\nrun = "{run}"\n'), main)


def test_an_older_recipe_key_is_read_with_a_note(tmp_path, capsys):
    (tmp_path / "run" / "gold").mkdir(parents=True)
    recipe = _recipe(tmp_path, '[[stage]]\ncommand = "train"\ngold = "{run}/gold"\nmodel = "encoder"\nout = "{run}/m"\n')
    (stage,) = load_recipe(recipe, main)
    assert stage.spec.classifier == "encoder"
