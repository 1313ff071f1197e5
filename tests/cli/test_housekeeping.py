"""`schemas`, `prepare-model`, `models`, `runs` on the command line (factory/cli/housekeeping.py). The work of
`runs --check`: tests/test_api.py and tests/cli/test_damaged_runs.py."""

from __future__ import annotations

import json

from tests.cli.helpers import assert_refused, generate, generate_in_process


def test_schemas_command_writes_the_derived_schemas(tmp_path):
    result = generate("schemas", "--out", tmp_path)
    assert result.returncode == 0
    label = json.loads((tmp_path / "label.schema.json").read_text())
    assert label["additionalProperties"] is False and set(label["required"]) == {"evidence", "labels"}


def test_runs_option_mistakes_are_one_error_line(tmp_path):
    assert_refused(generate("runs", "--repair"), "--repair needs --check")
    assert_refused(generate("runs", "--check", tmp_path / "nowhere"), "run folder not found")


def test_models_lists_the_catalogue_with_its_default():
    from factory.engines.catalogue import load_catalogue

    catalogue = load_catalogue()
    result = generate_in_process("models")
    assert result.returncode == 0, result.stderr
    assert f"{catalogue.default_name()} (default)" in result.stdout
    for name in catalogue.models:
        assert name in result.stdout


def test_prepare_model_mistakes_are_one_error_line(tmp_path):
    assert_refused(generate_in_process("prepare-model", "x", "--model", tmp_path), "not both")
    assert_refused(generate_in_process("prepare-model", " "), "the model NAME is empty")


def test_runs_lists_no_runs_in_an_empty_root(tmp_path):
    result = generate_in_process("runs", "--root", tmp_path)
    assert result.returncode == 0 and "runs in" in result.stderr and "stage" in result.stderr  # the table, empty
