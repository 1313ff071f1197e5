"""Commands generated from their specs (factory/cli/options.py): every spec is a command taking it, and every
command line of the README, now and at 48880b2, still parses (older flags with one note)."""

from __future__ import annotations

import shlex
from pathlib import Path

import click
import pytest

from factory.cli import options
from factory.cli.main import main
from factory.cli.options import build_spec
from factory.core import specs

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


def test_the_older_flags_still_work_with_one_note(monkeypatch, capsys):
    train = _parse("bin/generate train --set gold --model encoder --out m", monkeypatch)
    assert train.classifier == "encoder"
    predict = _parse("bin/generate predict --model data/models/clf --input s.txt --notes", monkeypatch)
    assert predict.classifier_dir == Path("data/models/clf") and predict.as_notes
    compare = _parse("bin/generate compare --models tfidf", monkeypatch)
    assert compare.classifiers == "tfidf"
    notes = capsys.readouterr().err.splitlines()
    assert notes == ["note: train --model is deprecated; use --classifier (same value)",
                     "note: predict --model is deprecated; use --classifier-dir (same value)",
                     "note: predict --notes is deprecated; use --as-notes (same value)",
                     "note: compare --models is deprecated; use --classifiers (same value)"]
    assert _parse("bin/generate train --classifier encoder --out m", monkeypatch).classifier == "encoder"
    assert _parse("bin/generate label --notes n --model m", monkeypatch).model == Path("m")  # --model: the LLM
    assert _parse("bin/generate predict --classifier-dir m --input s --as-notes --overwrite", monkeypatch).replace
    assert not capsys.readouterr().err


def test_every_spec_is_a_command_that_takes_it():
    assert {name for name in specs.COMMANDS} >= {"label", "gold import", "quality simulate-review", "run"}
    for name, spec in specs.COMMANDS.items():
        command = main
        for part in name.split():
            command = command.commands[part]
        assert command.spec is spec and command.help == spec.__doc__, name
    assert [p.name for p in main.commands["label"].params][:2] == ["notes", "text_column"]  # own fields first
