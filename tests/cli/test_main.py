"""The command line as a user meets it (factory/cli/main.py): help texts in pipeline order, and one line
with exit code 2 for a mistake click finds (an unknown option, a value out of range)."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

GENERATE = [sys.executable, str(ROOT / "bin" / "generate")]


def generate(*args, cwd=None):
    return subprocess.run([*GENERATE, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=120)


@pytest.mark.parametrize("command", [[], ["label"], ["synthesize"], ["schemas"], ["prepare-model"]])
def test_help_explains_every_command(command):
    result = generate(*command, "--help")
    assert result.returncode == 0
    assert "Usage:" in result.stdout
    if command == ["label"]:
        for flag in ("--notes", "--text-column", "--id-column", "--out", "--model", "--engine", "--taxonomy", "--seed", "--limit"):
            assert flag in result.stdout


def test_commands_are_listed_in_pipeline_order():
    listed = [line.split()[0] for line in generate("--help").stdout.split("Commands:")[1].splitlines() if line.strip()]
    assert listed[:4] == ["run", "label", "synthesize", "check"] and listed[-2:] == ["models", "runs"]


@pytest.mark.parametrize("args, fragment", [
    (["synthesize", "--per-category", "0"], "--per-category"),
    (["label", "--no-such-option"], "No such option"),
    (["compare", "--synthetic-weight", "nan"], "not a finite number"),
])
def test_a_click_refusal_is_one_error_line_naming_the_help(args, fragment):
    from tests.cli.helpers import assert_refused, generate_in_process

    message = assert_refused(generate_in_process(*args), fragment)
    assert message.endswith("--help`)") and "(see `generate" in message
