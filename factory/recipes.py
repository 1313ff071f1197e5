"""Recipes: a pipeline as one TOML file, a list of stages run in order (`bin/generate run RECIPE.toml`).

Each `[[stage]]` names a command (`label`, `synthesize`, `check`, `consistency`, `dedup`, `check-phi`,
`export`, `gold import`, `compare`, `quality`, ...) and sets its options by their long names
(`per_category = 20` for `--per-category 20`; a positional argument by its name). The keys are the
command's spec fields (factory/core/specs.py), so they cannot drift from the flags. Values may use
`{run}`, the run folder set in `[run] folder` (or by `--folder`). Every stage is resumable, so a recipe
that stopped is rerun as it is and continues where it stopped.

Before the first stage starts, every stage is validated into its spec (an unknown key, a wrong type or a
missing one is one `error:` line naming the stage and the key), and the stage graph is checked: a stage
that reads a dataset (gold, silver, bronze) that no earlier stage makes and that is not already there is
refused. `run_recipe` then runs the stages in this process through a callback (the CLI's: each stage's
command with the recipe's values, checked by click as a command line is), with one warm engine shared by
consecutive LLM stages.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pydantic

from factory.core.cli_types import ALIAS
from factory.core.errors import FactoryError
from factory.core.specs import COMMANDS, RecipeSpec, Spec, opt_of, recipe_key, same_path


def recipe_keys(spec: type[Spec]) -> dict[str, str]:
    """Recipe key -> the click parameter that takes it (factory/core/cli_types.params_of): every flag's key
    (older names included, which print their deprecation note when used), and an argument's name."""
    keys = {}
    for name, field in spec.model_fields.items():
        opt = opt_of(field)
        keys[name if opt.argument else recipe_key(opt.long(name))] = name
        for alias in opt.aliases:
            keys[recipe_key(alias)] = f"{name}{ALIAS}{recipe_key(alias)}"
        for also in opt.also:
            keys[recipe_key(also)] = name
    return keys


def runnable() -> list[str]:
    """The commands a stage may name, in pipeline order: every command but `run` (recipes do not nest)."""
    return [name for name in COMMANDS if COMMANDS[name] is not RecipeSpec]


def spec_of(name: str) -> type[Spec]:
    """The spec of the command a stage names: `label`, or a group's subcommand as `gold import`."""
    known = ", ".join(runnable())
    if name not in COMMANDS:
        under = [command for command in COMMANDS if command.startswith(f"{name} ")]
        if under:
            raise FactoryError(f"recipe: {name!r} is a group; name one of its commands, e.g. '{under[0]}'")
        raise FactoryError(f"recipe: unknown command {name!r}; known: {known}")
    if COMMANDS[name] is RecipeSpec:  # a recipe that runs recipes would run this one's stages from within a stage
        raise FactoryError(f"recipe: a stage cannot be {name!r} (recipes do not nest); known: {known}")
    return COMMANDS[name]


@dataclass
class Stage:
    """One validated stage: its command's name, the values by click parameter, and its spec."""

    name: str
    values: dict
    spec: Spec

    def uses_engine(self) -> bool:
        """Whether the stage starts an LLM engine (its spec takes the engine options)."""
        return "engine" in type(self.spec).model_fields

    def argv(self) -> list[str]:
        """The command line that gives the command these values (shown as the stage starts)."""
        fields = type(self.spec).model_fields
        argv: list[str] = []
        positional: list[str] = []
        for key, value in self.values.items():
            if value is None:
                continue
            name, _, alias = key.partition(ALIAS)
            opt = opt_of(fields[name])
            items = value if isinstance(value, list) else [value]
            if opt.argument:
                positional += [str(item) for item in items]
                continue
            flag = "--" + alias.replace("_", "-") if alias else opt.long(name)
            if fields[name].annotation is bool:
                argv += [flag] if value else ([opt.off] if opt.off else [])
                continue
            for item in items:
                argv += [flag, str(item)]
        return argv + positional


def load_recipe(path: Path, folder: str | None = None) -> list[Stage]:
    """Every stage, validated into its spec, and the stage graph checked, before anything runs."""
    try:
        recipe = tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))  # a BOM is not an error
    except FileNotFoundError:
        raise FactoryError(f"recipe not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise FactoryError(f"cannot read recipe {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise FactoryError(f"recipe {path} is not valid TOML: {exc}") from None
    unknown = set(recipe) - {"run", "stage"}
    if unknown:
        raise FactoryError(f"recipe {path}: unknown table(s) {', '.join(sorted(unknown))}; allowed: run, stage")
    run = recipe.get("run", {})
    if not isinstance(run, dict) or set(run) - {"folder"}:
        raise FactoryError(f"recipe {path}: [run] takes one key, folder")
    folder = folder or run.get("folder")
    stages = recipe.get("stage", [])
    if not isinstance(stages, list) or not stages:
        raise FactoryError(f"recipe {path} has no [[stage]]")
    planned = [_stage(number, raw, folder) for number, raw in enumerate(stages, start=1)]
    check_stage_graph(planned)
    return planned


def _stage(number: int, raw, folder: str | None) -> Stage:
    if not isinstance(raw, dict) or not isinstance(raw.get("command"), str):
        raise FactoryError(f"recipe stage {number}: every [[stage]] needs command = \"...\"")
    name = raw["command"]
    spec = spec_of(name)
    keys = recipe_keys(spec)
    values = {}
    for key, value in raw.items():
        if key == "command":
            continue
        if key not in keys:
            allowed = ", ".join(sorted(k for k, f in keys.items() if ALIAS not in f))
            raise FactoryError(f"recipe stage {number} ({name}): unknown key {key!r}; allowed: {allowed}")
        for item in value if isinstance(value, list) else [value]:
            # shown as a command line as the stage starts, where '-x' would read as an option: refused
            if isinstance(item, str) and item.startswith("-"):
                raise FactoryError(f"recipe stage {number} ({name}): key {key!r}: {item!r} looks like an option, "
                                   f"not a value (a path starting with '-' can be written ./{item})")
        values[keys[key]] = _fill(value, folder, number, name)
    try:
        validated = spec.model_validate({f.split(ALIAS)[0]: v for f, v in values.items()})
    except pydantic.ValidationError as exc:
        raise FactoryError(_one_line(number, name, exc, {k: f.split(ALIAS)[0] for k, f in keys.items()})) from None
    return Stage(name, values, validated)


def _one_line(stage: int, name: str, error: pydantic.ValidationError, fields: dict[str, str]) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    key = next((k for k, f in fields.items() if f == field), field)
    if first["type"] == "missing":
        return f"recipe stage {stage} ({name}): missing key {key!r}"
    return f"recipe stage {stage} ({name}): key {key!r}: {first['msg']}"


def _fill(value, folder: str | None, number: int, name: str):
    if isinstance(value, str) and "{run}" in value:
        if not folder:
            raise FactoryError(f"recipe stage {number} ({name}) uses {{run}} but no [run] folder is set")
        return value.replace("{run}", folder)
    if isinstance(value, list):
        return [_fill(v, folder, number, name) for v in value]
    return value


def check_stage_graph(planned: list[Stage]) -> None:
    """Refuse, before anything runs, a stage reading a dataset no earlier stage makes and that is not there."""
    made: list[Path] = []
    for number, stage in enumerate(planned, start=1):
        for what, candidates in stage.spec.reads():
            if not any(Path(c).exists() or any(same_path(c, m) for m in made) for c in candidates):
                where = " or ".join(str(c) for c in candidates)
                raise FactoryError(f"recipe stage {number} ({stage.name}) needs {what} at {where}, which no earlier "
                                   "stage makes and which is not there; add the stage that makes it before this one")
        made += stage.spec.makes()


def run_recipe(planned: list[Stage], run_stage: Callable[[int, Stage], None]) -> None:
    """Run the stages in order: `run_stage(number, stage)` runs one (it closes its run folder on the way out,
    so the next stage opens the same one). Consecutive LLM stages share one engine start; the engine is
    closed once no later stage needs it, to free the model's memory for those that follow."""
    from factory.engines.warm import keep_warm

    with keep_warm() as engines:
        for number, stage in enumerate(planned, start=1):
            if not any(later.uses_engine() for later in planned[number - 1:]):
                engines.close_all()
            run_stage(number, stage)
