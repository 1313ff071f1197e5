"""Recipes (factory/recipes.py): validated into the command specs and their stage graph checked before any
stage runs; keys taken from the specs; stages run in order with one warm engine for consecutive LLM stages."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory import recipes
from factory.core import specs
from factory.core.errors import FactoryError
from factory.recipes import Stage, load_recipe, recipe_keys, run_recipe, spec_of

ROOT = Path(__file__).resolve().parents[1]
LEGACY = ROOT / "tests" / "fixtures" / "legacy_cli"  # recipes/demo.toml and README's command lines at 48880b2


def _recipe(tmp_path, text: str, folder: bool = True) -> Path:
    path = tmp_path / "r.toml"
    path.write_text((f'[run]\nfolder = "{tmp_path / "run"}"\n' if folder else "") + text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", recipes.runnable())
def test_every_flag_of_every_command_is_a_recipe_key(name):
    spec = spec_of(name)
    keys = recipe_keys(spec)
    for field, flag in spec.flags().items():
        key = field if specs.opt_of(spec.model_fields[field]).argument else specs.recipe_key(flag)
        assert keys[key] == field, (name, flag)


def test_older_names_are_keys_too():
    assert recipe_keys(specs.TrainSpec)["model"] == "classifier__alias__model"
    assert recipe_keys(specs.PredictSpec)["notes"] == "as_notes__alias__notes"
    assert recipe_keys(specs.PredictSpec)["overwrite"] == "replace"


def test_the_demo_recipe_is_the_papers_experiment_in_pipeline_order():
    planned = load_recipe(ROOT / "recipes" / "demo.toml", folder="data/runs/x")
    lines = {stage.name: stage.argv() for stage in planned}
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
    assert [stage.uses_engine() for stage in planned] == [False, True, True, True, True, False, False, False]


def test_a_stage_shows_the_command_line_that_gives_its_values():
    spec = specs.PredictSpec(classifier_dir=Path("m"), input=Path("i"), as_notes=True)
    stage = Stage("predict", {"classifier_dir": "m", "as_notes__alias__notes": True, "replace": False,
                              "input": "i"}, spec)
    assert stage.argv() == ["--classifier-dir", "m", "--notes", "--input", "i"]
    synth = Stage("synthesize", {"prefix_caching": False, "model": None}, specs.SynthesizeSpec(prefix_caching=False))
    assert synth.argv() == ["--no-prefix-caching"]


@pytest.mark.parametrize("recipe", [LEGACY / "demo_48880b2.toml", ROOT / "recipes" / "demo.toml"])
def test_the_old_and_new_demo_recipes_validate_and_their_stage_graph_holds(recipe, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the recipes name data/demo/... relative to the project
    planned = load_recipe(recipe, folder=str(tmp_path / "run"))
    assert [stage.name for stage in planned][-1] == "compare"
    assert all(isinstance(stage.spec, specs.Spec) for stage in planned)


@pytest.mark.parametrize("text, message", [
    ('[[stage]]\ncommand = "synthesize"\nper_categry = 3\n',
     "recipe stage 1 (synthesize): unknown key 'per_categry'; allowed: "),
    ('[[stage]]\ncommand = "synthesize"\nper_category = "many"\n', "recipe stage 1 (synthesize): key 'per_category'"),
    ('[[stage]]\ncommand = "label"\nstrategy = "magic"\nnotes = "x"\n', "key 'strategy'"),
    ('[[stage]]\ncommand = "labell"\n', "unknown command 'labell'; known: label, synthesize, check"),
    ('[[stage]]\ncommand = "gold"\n', "'gold' is a group; name one of its commands, e.g. 'gold import'"),
    ('[[stage]]\ncommand = "run"\nrecipe = "x.toml"\n', "a stage cannot be 'run' (recipes do not nest)"),
    ('[[stage]]\nper_category = 3\n', 'needs command = "..."'),
    ('[[stage]]\ncommand = "label"\nout = "{run}"\nnotes = "n"\n', "uses {run} but no [run] folder"),
    ('[[stage]]\ncommand = "export"\nrun = "r"\n', "recipe stage 1 (export): missing key 'out'"),
    ('[[stage]]\ncommand = "gold import"\npath = "--help"\n', "'--help' looks like an option"),
    ('[stages]\n', "unknown table(s) stages"),
    ('[[stage]\n', "not valid TOML"),
])
def test_a_bad_recipe_is_one_error_before_anything_runs(tmp_path, text, message):
    with pytest.raises(FactoryError) as caught:
        load_recipe(_recipe(tmp_path, text, folder=False))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("stages, fragment", [
    ('[[stage]]\ncommand = "check"\nrun = "{run}"\ndataset = "bronze"\n', "stage 1 (check) needs bronze at"),
    ('[[stage]]\ncommand = "consistency"\nrun = "{run}"\n', "stage 1 (consistency) needs silver at"),
    ('[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "compare"\ngold = "{run}/gold"\n',
     "stage 2 (compare) needs gold at"),
    ('[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "check"\nrun = "{run}"\n'
     'dataset = "silver"\n', "stage 2 (check) needs silver at"),
])
def test_a_stage_whose_input_no_earlier_stage_makes_is_refused(tmp_path, stages, fragment):
    (tmp_path / "run").mkdir()
    with pytest.raises(FactoryError, match="no earlier stage makes") as caught:
        load_recipe(_recipe(tmp_path, stages))
    assert fragment in str(caught.value)


def test_an_input_an_earlier_stage_makes_or_the_run_holds_passes(tmp_path):
    (tmp_path / "run" / "silver").mkdir(parents=True)
    recipe = _recipe(tmp_path, '[[stage]]\ncommand = "synthesize"\nout = "{run}"\n\n[[stage]]\ncommand = "check"\n'
                               'run = "{run}"\n\n[[stage]]\ncommand = "consistency"\nrun = "{run}"\n')
    assert [s.name for s in load_recipe(recipe)] == ["synthesize", "check", "consistency"]


def test_an_older_recipe_key_is_validated_into_the_field(tmp_path):
    (tmp_path / "run" / "gold").mkdir(parents=True)
    recipe = _recipe(tmp_path, '[[stage]]\ncommand = "train"\ngold = "{run}/gold"\nmodel = "encoder"\nout = "{run}/m"\n')
    (stage,) = load_recipe(recipe)
    assert stage.spec.classifier == "encoder" and stage.values["classifier__alias__model"] == "encoder"


def test_stages_run_in_order_and_the_engine_closes_once_no_later_stage_needs_it(monkeypatch):
    from factory.engines import warm

    events = []
    close_all = warm.WarmEngines.close_all
    monkeypatch.setattr(warm.WarmEngines, "close_all", lambda self: (events.append("close engines"), close_all(self))[1])
    planned = [Stage("synthesize", {}, specs.SynthesizeSpec()), Stage("check", {}, specs.CheckSpec(run=Path("r"))),
               Stage("dedup", {}, specs.DedupSpec(run=Path("r"))), Stage("export", {}, specs.ExportSpec(
                   run=Path("r"), out=Path("o")))]
    run_recipe(planned, lambda number, stage: events.append(f"{number} {stage.name}"))
    # the last close is the end of the recipe's warm block
    assert events == ["1 synthesize", "2 check", "close engines", "3 dedup", "close engines", "4 export", "close engines"]
