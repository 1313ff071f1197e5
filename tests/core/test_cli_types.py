"""Click parameters from specs (factory/core/cli_types.py): the input types every option's check comes from,
a spec's parameters, and the spec again from parsed values (older flag names with one note)."""

from __future__ import annotations

import os
from pathlib import Path

import click
import pytest

from factory.core import specs
from factory.core.cli_types import (ALIAS, FiniteFloat, InputPath, NameOrFolder, OutFolder, SeedList, build_spec,
                                    params_of)
from factory.core.errors import FactoryError


def _command(spec: type[specs.Spec]) -> click.Command:
    return click.Command(spec.COMMAND, params=params_of(spec), callback=lambda **values: build_spec(spec, values))


def _parse(spec: type[specs.Spec], args: list[str]):
    return _command(spec).main(args, standalone_mode=False)


def test_every_numeric_and_path_option_declares_its_checks():
    """Numbers are bounded on both sides (floats also finite) and paths say what they must be: a new field
    that takes a bare int, float or path fails here."""
    loose = []
    for name, spec in specs.COMMANDS.items():
        for param in params_of(spec):
            kind = param.type
            if isinstance(kind, click.IntRange):
                ok = kind.min is not None and kind.max is not None
            elif isinstance(kind, (click.FloatRange, click.types.FloatParamType)):
                ok = isinstance(kind, FiniteFloat) and kind.min is not None
            elif isinstance(kind, (click.types.IntParamType, click.Path, click.File)):
                ok = False
            else:
                ok = True  # text, choices, flags, and the path types below
            path_like = isinstance(kind, (InputPath, NameOrFolder, OutFolder))
            if not ok or (param.name in ("out", "run", "taxonomy", "gold", "notes") and not path_like):
                loose.append(f"{name} {param.opts[0] if param.opts else param.name}: {kind!r}")
    assert not loose, loose


def test_numbers_must_be_finite_and_seeds_in_range():
    weight = FiniteFloat(min=0, min_open=True)
    assert weight.convert("0.5", None, None) == 0.5
    for bad in ("nan", "inf", "0", "-1"):
        with pytest.raises(click.BadParameter):
            weight.convert(bad, None, None)
    assert SeedList().convert("0, 1,2", None, None) == "0, 1,2"
    for bad in ("", ",", "0,-1", "a", str(2**32)):
        with pytest.raises(click.BadParameter):
            SeedList().convert(bad, None, None)


def test_paths_are_refused_in_one_line_naming_the_option(tmp_path):
    option = click.Option(["--gold"])
    folder, file, fifo = tmp_path / "folder", tmp_path / "file.jsonl", tmp_path / "pipe"
    folder.mkdir()
    file.write_text("x")
    os.mkfifo(fifo)
    only_folders = InputPath("gold folder", file=False, folder=True, missing="no gold data in {path}")
    assert only_folders.convert(str(folder), option, None) == folder
    for path, message in ((file, "--gold: gold folder .* is a file; give a folder"),
                          (fifo, "--gold: .* is a named pipe, not a folder"), (tmp_path / "nope", "--gold: no gold data in")):
        with pytest.raises(FactoryError, match=message):
            only_folders.convert(str(path), option, None)
    with pytest.raises(FactoryError, match="is a file; give a model folder or name"):
        NameOrFolder("model").convert(str(file), click.Option(["--model"]), None)
    assert NameOrFolder("model").convert("a-name", None, None) == Path("a-name")
    out = click.Option(["--out"])
    assert OutFolder().convert(str(tmp_path / "new"), out, None) == tmp_path / "new"
    assert OutFolder(path_type=str).convert(str(tmp_path / "new"), out, None) == str(tmp_path / "new")
    with pytest.raises(FactoryError, match=f"--out {file / 'below'} cannot be made: {file} is a file"):
        OutFolder().convert(str(file / "below"), out, None)


def test_a_spec_becomes_its_parameters_with_checks_defaults_and_hidden_older_names():
    params = {param.name: param for param in params_of(specs.TrainSpec)}
    assert params["out"].required and params["set_name"].opts == ["--set"]
    assert params["seed"].default == 0 and isinstance(params["gold"].type, InputPath) and not params["gold"].type.file
    older = params[f"classifier{ALIAS}model"]
    assert older.opts == ["--model"] and older.hidden
    predict = {param.name: param for param in params_of(specs.PredictSpec)}
    assert predict["replace"].opts == ["--replace", "--overwrite"]
    assert predict[f"as_notes{ALIAS}notes"].is_flag  # an older switch stays a switch
    gold = params_of(specs.GoldImportSpec)[0]
    assert isinstance(gold, click.Argument) and gold.name == "path"


def test_older_flag_names_are_read_with_one_deprecation_note(tmp_path, capsys):
    train = _parse(specs.TrainSpec, ["--model", "encoder", "--out", str(tmp_path / "m")])
    assert isinstance(train, specs.TrainSpec) and train.classifier == "encoder"
    predict = _parse(specs.PredictSpec, ["--classifier-dir", str(tmp_path), "--input", str(tmp_path), "--notes"])
    assert predict.as_notes is True
    assert capsys.readouterr().err.splitlines() == [
        "note: train --model is deprecated; use --classifier (same value)",
        "note: predict --notes is deprecated; use --as-notes (same value)"]
    assert _parse(specs.PredictSpec, ["--classifier-dir", str(tmp_path), "--input", str(tmp_path)]).as_notes is False
    assert not capsys.readouterr().err


def test_a_value_the_spec_refuses_is_a_factory_error_naming_the_command_and_field():
    with pytest.raises(FactoryError, match=r"^label: 1 validation error") as caught:
        build_spec(specs.LabelSpec, {"notes": Path("n"), "shard_size": "many"})
    assert "shard_size" in str(caught.value)


def test_a_missing_required_option_is_refused_before_the_command_runs():
    """Click (8.3 on) takes an explicit default of None as a given value: a required option gets none."""
    seen = 0
    for spec in specs.COMMANDS.values():
        for param in params_of(spec):
            if isinstance(param, click.Option) and param.required:
                seen += 1
                with pytest.raises(click.MissingParameter):
                    param.process_value(click.Context(_command(spec)), param.get_default(click.Context(_command(spec))))
    assert seen >= 10  # label --notes, export --out, every --run of a judge, ...
    with pytest.raises(click.MissingParameter, match="out"):
        _parse(specs.ExportSpec, ["--run", "."])
