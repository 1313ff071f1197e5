"""The command specs (factory/core/specs.py): each flag one field with one type, declared once; per-command
help, checks, defaults and names from the class tables; the datasets a command reads and makes."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from factory.core import specs
from factory.core.specs import COMMANDS, GOLD_FOLDER, opt_of


def _declarations() -> dict[str, set]:
    """Long flag -> the distinct (field, type, older names, negative form) it has across every command."""
    found: dict[str, set] = {}
    for spec in COMMANDS.values():
        for name, field in spec.model_fields.items():
            opt = opt_of(field)
            if opt.argument:
                continue
            found.setdefault(opt.long(name), set()).add((name, repr(field.annotation), opt.aliases, opt.off))
    return found


def test_each_flag_is_one_field_of_one_type_in_every_command():
    several = {flag: sorted(map(str, kinds)) for flag, kinds in _declarations().items() if len(kinds) > 1}
    assert several == {}
    # an older name never shadows a flag of the same command
    for spec in COMMANDS.values():
        flags = set(spec.flags().values())
        older = {alias for field in spec.model_fields.values() for alias in opt_of(field).aliases}
        assert not flags & older, spec.COMMAND


def _source_declarations(source: str) -> dict[str, set[str]]:
    """Long flag -> where specs.py declares it: a module-level Annotated alias, or an inline Annotated field."""
    tree = ast.parse(source)
    aliases = {node.targets[0].id: node.value for node in tree.body if isinstance(node, ast.Assign)
               and isinstance(node.targets[0], ast.Name) and "Annotated" in ast.unparse(node.value)}
    found: dict[str, set[str]] = {}
    for klass in (node for node in tree.body if isinstance(node, ast.ClassDef)):
        for item in klass.body:
            if not (isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)):
                continue
            annotation = item.annotation
            named = isinstance(annotation, ast.Name) and annotation.id in aliases
            declared = aliases[annotation.id] if named else annotation
            text = ast.unparse(declared)
            if "Annotated" not in text or "ClassVar" in text or "argument=True" in text:
                continue
            opt = next(n for n in ast.walk(declared) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "Opt")
            flag = next((k.value.value for k in opt.keywords if k.arg == "flag"), "--" + item.target.id.replace("_", "-"))
            found.setdefault(flag, set()).add(annotation.id if named else f"{klass.name}.{item.target.id}")
    return found


def test_each_flag_is_declared_once_in_the_source():
    found = _source_declarations(Path(specs.__file__).read_text(encoding="utf-8"))
    assert {flag: sorted(where) for flag, where in found.items() if len(where) > 1} == {}
    assert found["--gold"] == {"Gold"} and found["--seed"] == {"SeedField"} and len(found) > 80
    # the check sees a flag declared twice
    twice = "from x import Opt\nA = Annotated[int, Opt('a')]\nclass S:\n    seed: A\nclass T:\n    seed: Annotated[int, Opt('b')]\n"
    assert _source_declarations(twice) == {"--seed": {"A", "T.seed"}}


def test_the_check_of_a_flag_changes_per_command_through_the_class_table():
    label_gold = opt_of(specs.LabelSpec.model_fields["gold"]).kind
    assert label_gold.file and label_gold.folder  # label: a gold file or folder
    for spec in (specs.CompareSpec, specs.TrainSpec, specs.SimulateReviewSpec, specs.ReviewSpec):
        assert opt_of(spec.model_fields["gold"]).kind is GOLD_FOLDER, spec.COMMAND  # an imported folder only
    assert not GOLD_FOLDER.file and "gold import" in GOLD_FOLDER.missing
    # the shared declaration is untouched by a command's table
    assert opt_of(specs.DedupSpec.model_fields["gold"]).kind == label_gold
    assert opt_of(specs.TrainSpec.model_fields["seed"]).help == "Seed of the classifier."
    assert opt_of(specs.LabelSpec.model_fields["seed"]).help.startswith("Run seed")


def test_run_is_required_except_where_a_group_takes_subcommands():
    assert specs.CheckSpec.model_fields["run"].is_required()
    assert not specs.QualitySpec.model_fields["run"].is_required() and specs.QualitySpec().run is None
    with pytest.raises(Exception, match="run"):
        specs.CheckSpec()


def test_every_command_on_a_run_folder_takes_run_and_the_writers_also_out(tmp_path):
    """One spelling for the run folder: --run everywhere (label and synthesize write it, so --out too)."""
    from factory.cli.main import main

    for command in ("label", "synthesize"):
        group = main.get_command(None, command)
        ctx = group.make_context(command, ["--notes", str(tmp_path), "--run", str(tmp_path / "r")]
                                 if command == "label" else ["--run", str(tmp_path / "r")])
        assert Path(ctx.params["out"]) == tmp_path / "r"

    def takes_run(spec) -> bool:
        out = spec.model_fields.get("out")
        return "run" in spec.model_fields or (out is not None and "--run" in opt_of(out).also)

    assert {"label", "synthesize", "check", "consistency", "dedup", "check-phi", "export", "quality"} <= {
        name for name, spec in COMMANDS.items() if takes_run(spec)}


def test_predict_takes_notes_as_a_switch_under_its_own_name_and_the_older_one():
    field = specs.PredictSpec.model_fields["as_notes"]
    assert opt_of(field).long("as_notes") == "--as-notes" and opt_of(field).aliases == ("--notes",)
    assert field.annotation is bool
    assert opt_of(specs.PredictSpec.model_fields["replace"]).also == ("--overwrite",)
    assert opt_of(specs.TrainSpec.model_fields["replace"]).also == ()  # only predict had --overwrite


def test_commands_share_the_engine_fields_with_their_own_sampling_defaults():
    assert specs.SynthesizeSpec.model_fields["temperature"].default == 0.8
    assert specs.LabelSpec.model_fields["temperature"].default == 0.0
    assert specs.SynthesizeSpec().nucleus == 0.95 and specs.LabelSpec(notes=Path("n")).nucleus == 1.0
    assert specs.CheckerSpec(gold=Path("g")).max_tokens == 96 and specs.StrategiesSpec(gold=Path("g")).max_tokens == 128


def test_spec_choices_match_the_layers_that_own_them():
    from factory.engines import ENGINES
    from factory.quality.privacy import DEFAULT_LICENSE
    from factory.stages.strategies import STRATEGIES

    assert specs.STRATEGY_NAMES == STRATEGIES
    assert set(ENGINES) == set(opt_of(specs.EngineFields.model_fields["engine"]).kind.values)
    assert specs.ExportSpec.model_fields["license"].default == DEFAULT_LICENSE
    assert typing.get_args(specs.LabelSpec.model_fields["strategy"].annotation) == STRATEGIES


def test_specs_say_what_they_read_and_make(tmp_path):
    run = tmp_path / "run"
    assert specs.LabelSpec(notes=Path("n"), out=run).makes() == [run / "silver"]
    assert specs.LabelSpec(notes=Path("n")).makes() == []  # a new run folder: nothing later can name it
    assert specs.CheckSpec(run=run, dataset="both").reads() == [("silver or bronze", [run / "silver", run / "bronze"])]
    assert specs.CompareSpec(silver=[run / "silver"]).reads() == [("gold", [specs.DEFAULT_GOLD_DIR]),
                                                                  ("silver", [run / "silver"])]
    gold = specs.GoldImportSpec(from_review=run)
    assert gold.target() == run / "gold" and gold.makes() == [run / "gold"] and gold.reads() == [("silver", [run / "silver"])]
    assert specs.SimulateReviewSpec(run=run).reads()[1] == ("gold", [run / "gold"])


def test_recipe_keys_are_flags_without_dashes():
    assert specs.recipe_key("--per-category") == "per_category"
    assert specs.SynthesizeSpec.flags()["per_category"] == "--per-category"
    assert specs.TrainSpec.flags()["set_name"] == "--set"
