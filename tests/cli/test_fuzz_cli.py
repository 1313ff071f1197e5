"""Property-based fuzzing of every command's options and input files (issue 19 §2).

Hypothesis draws a command, one to three of its options, and a hostile value for each: numbers that are
negative, NaN, infinite, huge or not numbers; empty or option-looking strings; paths that are missing, a
folder, a named pipe, below a file, or files of garbage, a lone BOM, broken JSONL, ragged or unclosed CSV,
a taxonomy whose name is an object, a truncated Parquet file, a recipe that nests or passes `--help`.
Whatever it draws, the command must refuse it: exit code 2, exactly one `error:` line (the last line),
no traceback, no "internal error", and every file that existed before byte for byte as it was.

Speed: commands run in this process (tests/cli/helpers.generate_in_process), the fuzzed options come first
on the command line (click converts them first), and each command has a baseline that is refused before
any model, encoder or engine loads (a model folder holding no model, a run folder that is empty, ...).
Engines, the review server and model downloads are replaced by tripwires: reaching one fails the test.
The case count is printed (`pytest -s` or `-rP`) and fixed by FUZZ_EXAMPLES.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

# Hypothesis keeps a cache of its own (.hypothesis/ in the working directory): not in the project's tree.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "factory-hypothesis"))
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from tests.cli.helpers import generate_in_process, tree_hashes

FUZZ_EXAMPLES = int(os.environ.get("FACTORY_FUZZ_EXAMPLES", "1000"))
# CI draws the same cases every time (derandomized); FACTORY_FUZZ_RANDOM=1 explores new ones locally.
FUZZ_RANDOM = os.environ.get("FACTORY_FUZZ_RANDOM") == "1"

# ------------------------------------------------------------------------------------------ hostile values

NUMBERS = ["nan", "NaN", "inf", "-inf", "1e309", "-1e309", "-1", "-0.5", "-2147483649", str(2**64), str(10**40),
           "", " ", "1.5e", "abc", "--help", "-x", "0x10", "1_0e"]
INTEGERS = ["-1", "-7", str(-2**63), str(2**31), str(2**64), str(10**30), "1.5", "nan", "inf", "", "ten", "--help"]
TEXTS = ["", " ", "--help", "-h", "--notes", "-", "-1", "x" * 5000, "ünïcödé ✓", "a,b,,", "gold++silver", "../../etc"]
NAMES = ["", "nope", "-1", "../../etc/passwd", "x" * 300, "ünïcödé", "smollm2"]  # never a catalogue model's name
SEEDS = ["-1", "0,-1", "", ",", "1.5", "nan", str(2**32), "0,1," + str(10**20), "a,b", "--help"]

GARBAGE = {
    "empty": b"",
    "bom only": b"\xef\xbb\xbf",
    "bom broken json": b"\xef\xbb\xbf{\"text\": \"She forgets\"\n{broken\n",
    "bom notes without labels": b"\xef\xbb\xbf{\"text\": \"She keeps forgetting her keys.\"}\n",
    "not utf-8": b"text\ncaf\xe9 au lait\n",
    "binary": bytes(range(256)) * 4,
    "ragged csv": b"text,labels\nShe forgets.,none\nHe is lost,none,extra\n",
    "unclosed quote": b"text,labels\n" + b"\"She opens a quote,none\n" + b"He is fine,none\n" * 300,
    "json list": b"[1, 2, 3]\n",
    "text is an object": b"{\"text\": {\"a\": 1}, \"labels\": [\"nope\"]}\n",
    "taxonomy named by an object": b"{\"name\": {\"en\": \"x\"}, \"categories\": [{\"id\": \"a\", \"definition\": \"d\"}],"
                                   b" \"none\": {\"id\": \"none\", \"definition\": \"n\"}}",
    "truncated parquet": b"PAR1" + b"\x00" * 40 + b"PAR1",
    "recipe that nests": b"[[stage]]\ncommand = \"run\"\nrecipe = \"x.toml\"\n",
    "recipe passing --help": b"[[stage]]\ncommand = \"gold import\"\npath = \"--help\"\n",
    "recipe with nan": b"[[stage]]\ncommand = \"synthesize\"\ntemperature = nan\nmodel = \"/dev/null\"\n",
    "toml garbage": b"[[stage]\ncommand = ",
}
SUFFIXES = [".jsonl", ".csv", ".json", ".txt", ".parquet", ".toml", ""]


@dataclass(frozen=True)
class PathValue:
    """A path to make in the case's folder before the command runs."""

    kind: str  # missing, folder, fifo, below-file, file
    suffix: str = ""
    content: str = ""  # a GARBAGE key, for kind == "file"

    def make(self, root: Path, index: int) -> Path:
        path = root / f"in{index}{self.suffix}"
        if self.kind == "folder":
            path.mkdir()
        elif self.kind == "fifo":
            os.mkfifo(path)
        elif self.kind == "below-file":
            path.write_text("a file\n")
            path = path / "inside"
        elif self.kind == "file":
            path.write_bytes(GARBAGE[self.content])
        return path


files = st.builds(PathValue, st.just("file"), st.sampled_from(SUFFIXES), st.sampled_from(sorted(GARBAGE)))
special = st.builds(PathValue, st.sampled_from(["missing", "fifo", "below-file"]), st.sampled_from(SUFFIXES))
to_read = st.one_of(files, special, st.just(PathValue("folder")))  # an empty folder: the command refuses it
# Values a type may accept are fine too: every command's baseline is refused after its options are read.
VALUES = {
    "number": st.one_of(st.sampled_from(NUMBERS), st.floats().map(repr), st.integers().map(str)),
    "int": st.one_of(st.sampled_from(INTEGERS), st.integers(max_value=-1).map(str),
                     st.integers(min_value=2**31).map(str), st.floats(allow_nan=True).map(repr)),
    "seeds": st.one_of(st.sampled_from(SEEDS), st.lists(st.integers(), min_size=1, max_size=4).map(
        lambda seeds: ",".join(map(str, seeds)))),
    "text": st.one_of(st.sampled_from(TEXTS), st.text(max_size=30)),
    "name-argument": st.sampled_from(NAMES),  # a positional NAME: "--" or "-h" would be the command's own syntax
    "in": to_read,
    "in-file": to_read,
    "in-dir": to_read,
    "not-a-dir": st.one_of(files, special),  # where an empty folder is fine input
    "out": st.one_of(st.builds(PathValue, st.sampled_from(["fifo", "below-file"])), files),
    "name": st.one_of(files, st.builds(PathValue, st.sampled_from(["fifo", "below-file"]))),
}

# ------------------------------------------------------------------------------------------------ commands

ENGINE = {"--seed": "int", "--limit": "int", "--temperature": "number", "--top-p": "number", "--max-tokens": "int",
          "--batch-size": "int", "--tensor-parallel-size": "int", "--data-parallel-size": "int",
          "--max-model-len": "int", "--workers": "int", "--taxonomy": "in-file", "--model": "name", "--device": "text"}
TRAINING = {"--gold": "in-dir", "--silver": "in-dir", "--bronze": "in-dir", "--synthetic-cap-ratio": "number",
            "--synthetic-weight": "number", "--encoder": "in-dir", "--epochs": "int", "--out": "out",
            "--cache-dir": "out", "--negatives": "in", "--taxonomy": "in-file"}


@dataclass(frozen=True)
class Command:
    """A command to fuzz: a baseline refused before anything loads ({notes}: a one-line note, {empty}: an
    empty folder, {broken}: a JSONL file with a broken line, {new}: a path not there yet), the options to
    fuzz and their kinds, and its positional argument (kind, baseline value) if it takes one."""

    baseline: tuple[tuple[str, str | None], ...]
    fuzzed: dict[str, str]
    positional: tuple[str, str] | None = None


COMMANDS = {
    "label": Command((("--notes", "{notes}"), ("--model", "{empty}"), ("--out", "{new}")),
                     {**ENGINE, "--out": "out", "--notes": "in", "--text-column": "text", "--id-column": "text",
                      "--shard-size": "int", "--gold": "in", "--negatives": "in", "--combine-weight": "number",
                      "--combine-threshold": "number"}),
    "synthesize": Command((("--model", "{empty}"), ("--out", "{new}")),
                          {**ENGINE, "--out": "out", "--per-category": "int", "--per-request": "int"}),
    "check": Command((("--run", "{empty}"),), {**ENGINE, "--run": "in-dir"}),
    "consistency": Command((("--run", "{empty}"),), {**ENGINE, "--run": "in-dir", "--samples": "int"}),
    "dedup": Command((("--run", "{empty}"),), {"--run": "in-dir", "--gold": "in", "--threshold": "number",
                                               "--taxonomy": "in-file"}),
    "check-phi": Command((("--run", "{empty}"), ("--no-ner", None)),
                         {"--run": "in-dir", "--notes": "in", "--gold": "in", "--ngram": "int", "--text-column": "text"}),
    "export": Command((("--run", "{empty}"), ("--out", "{new}")), {"--run": "in-dir", "--out": "out", "--license": "text"}),
    "gold import": Command((("--out", "{new}"),), {"--from-review": "in-dir", "--text-column": "text",
                                                   "--labels-column": "text", "--out": "out", "--taxonomy": "in-file"},
                           ("in-file", "{broken}")),
    "compare": Command((("--gold", "{empty}"), ("--models", "tfidf"), ("--out", "{new}")),
                       {**TRAINING, "--sets": "text", "--seeds": "seeds", "--models": "text", "--split-seed": "int",
                        "--test-fraction": "number", "--silver-min-agreement": "number"}),
    "train": Command((("--gold", "{empty}"), ("--out", "{new}")), {**TRAINING, "--seed": "int", "--set": "text",
                                                                    "--model": "text"}),
    "predict": Command((("--model", "{empty}"), ("--input", "{notes}"), ("--out", "{new}")),
                       {"--model": "in-dir", "--input": "in", "--text-column": "text", "--id-column": "text",
                        "--out": "out", "--cache-dir": "out"}),
    "quality": Command((("--run", "{empty}"),), {"--run": "in-dir", "--gold": "in", "--out": "out",
                                                 "--noise-threshold": "number", "--review-limit": "int",
                                                 "--taxonomy": "in-file"}),
    "quality strategies": Command((("--gold", "{broken}"),), {**ENGINE, "--gold": "in", "--strategies": "text",
                                                              "--exemplars": "in", "--out": "out"}),
    "quality checker": Command((("--gold", "{broken}"),), {**ENGINE, "--gold": "in", "--out": "out"}),
    "quality simulate-review": Command((("--run", "{empty}"),), {"--run": "in-dir", "--gold": "in-dir", "--batch": "int",
                                                                 "--budget": "int", "--seeds": "seeds", "--out": "out",
                                                                 "--taxonomy": "in-file"}),
    # review serves until stopped: its baseline --run is a file, refused whatever the fuzzed options were
    "review": Command((("--run", "{notes}"),), {"--run": "in-dir", "--seed": "int", "--port": "int", "--host": "text",
                                                "--taxonomy": "in-file", "--gold": "in-dir", "--reviewer": "text"}),
    "schemas": Command((("--taxonomy", "{broken}"), ("--out", "{new}")),
                       {"--taxonomy": "in-file", "--out": "out", "--per-request": "int"}),
    "prepare-model": Command((), {"--model": "name", "--wheels": "in-dir"}, ("name-argument", "no-such-model")),
    "runs": Command((), {"--root": "not-a-dir", "--check": "name"}),
    "models": Command((), {}),  # no options: only a stray option or argument to refuse
    "run": Command((), {"--folder": "out"}, ("in-file", "{broken}")),
}


@st.composite
def cases(draw):
    name = draw(st.sampled_from(sorted(COMMANDS)))
    command = COMMANDS[name]
    chosen = draw(st.lists(st.sampled_from(sorted(command.fuzzed)), min_size=1 if command.fuzzed and not command.positional
                           else 0, max_size=3, unique=True)) if command.fuzzed else []
    values = {option: draw(VALUES[command.fuzzed[option]]) for option in chosen}
    argument = None
    if command.positional and (not chosen or draw(st.booleans())):
        argument = draw(VALUES[command.positional[0]])
    stray = [["--no-such-option"], ["stray-argument"], ["-v"]]
    extra = draw(st.sampled_from(stray if not command.fuzzed and not command.positional else [[]] * 6 + stray[:2]))
    return name, values, argument, extra


# ----------------------------------------------------------------------------------------------- the test

def _baseline_files(root: Path) -> dict[str, Path]:
    notes = root / "notes.txt"
    notes.write_text("She keeps forgetting her keys.\n", encoding="utf-8")
    broken = root / "broken.jsonl"
    broken.write_text('{"text": "She forgets.", "labels": ["none"]}\n{broken\n', encoding="utf-8")
    (root / "empty").mkdir()
    return {"notes": notes, "broken": broken, "empty": root / "empty", "new": root / "new-output"}


def _argv(case, root: Path) -> list[str]:
    name, values, argument, extra = case
    command = COMMANDS[name]
    made = {key: str(path) for key, path in _baseline_files(root).items()}
    argv = name.split()
    for index, (option, value) in enumerate(values.items()):  # fuzzed options first: click converts them first
        argv += [option, str(value.make(root, index)) if isinstance(value, PathValue) else value]
    for option, value in command.baseline:
        if option not in values:
            argv += [option] if value is None else [option, value.format(**made)]
    argv += extra
    if command.positional:
        if argument is None:
            argv.append(command.positional[1].format(**made))
        else:
            argv.append(str(argument.make(root, 99)) if isinstance(argument, PathValue) else argument)
    return argv


class Tripwire(Exception):
    """Raised where a fuzzed command would start an engine, a server or a download."""


def _tripwires(monkeypatch) -> None:
    from factory.engines import catalogue
    from factory.review import app
    from factory.stages.context import StageContext

    def trip(*_args, **_kwargs):
        raise Tripwire("a fuzzed command got past every input check to an engine, a server or a download")

    monkeypatch.setattr(StageContext, "engine", property(trip))
    monkeypatch.setattr(app, "serve", trip)
    monkeypatch.setattr(catalogue, "prepare", trip)


def _leaves(group, prefix=()):
    """Every command a user can run: a group's subcommands, and the group itself where it runs alone."""
    import click

    for name, command in group.commands.items():
        path = (*prefix, name)
        if not isinstance(command, click.Group) or command.invoke_without_command:
            yield " ".join(path)
        if isinstance(command, click.Group):
            yield from _leaves(command, path)


def test_every_command_is_fuzzed():
    from factory.cli.main import main

    assert set(COMMANDS) == set(_leaves(main))


def test_every_command_refuses_hostile_options_and_files_in_one_line():
    seen: Counter = Counter()

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=not FUZZ_RANDOM,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(case=cases())
    def check(case):
        with tempfile.TemporaryDirectory(prefix="factory-fuzz-") as folder:
            root = Path(folder)
            argv = _argv(case, root)
            before = tree_hashes(root)
            result = generate_in_process(*argv)
            after = tree_hashes(root)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        shown = f"generate {' '.join(argv)}\n{result.stderr[-3000:]}"
        assert result.returncode == 2, shown
        assert len(errors) == 1 and lines[-1] == errors[0], shown
        assert "Traceback" not in result.stderr and "internal error" not in errors[0], shown
        assert {path: after.get(path) for path in before} == before, shown
        seen[case[0]] += 1

    with pytest.MonkeyPatch.context() as monkeypatch:
        _tripwires(monkeypatch)
        check()
    total = sum(seen.values())
    print(f"\nfuzzed {total} cases (max_examples={FUZZ_EXAMPLES}) over {len(seen)} commands, every one refused in "
          f"one error line: " + ", ".join(f"{name} {count}" for name, count in sorted(seen.items())))
    assert len(seen) == len(COMMANDS), sorted(set(COMMANDS) - set(seen))
