"""`bin/generate run RECIPE.toml`: a pipeline as a recipe, a list of stages run in order from one file.

Each `[[stage]]` names a command (`label`, `synthesize`, `check`, `consistency`, `dedup`, `check-phi`,
`export`, `gold import`, `compare`, `quality`, ...) and sets its options by their long names
(`per_category = 20` for `--per-category 20`; a positional argument by its name). The keys are the
command's spec fields (factory/core/specs.py), so they cannot drift from the flags. Values may use
`{run}`, the run folder set in `[run] folder` (or by `--folder`). Every stage is resumable, so a recipe
that stopped is rerun as it is and continues where it stopped.

Before the first stage starts, every stage is validated into its spec (an unknown key, a wrong type or a
missing one is one `error:` line naming the stage and the key), and the stage graph is checked: a stage
that reads a dataset (gold, silver, bronze) that no earlier stage makes and that is not already there is
refused. Stages then run in this process, each through its command with the recipe's values (click checks
them as it checks a command line: ranges, paths).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import click
import pydantic

from factory.cli.options import ALIAS, command
from factory.core.errors import FactoryError
from factory.core.progress import console
from factory.core.specs import RecipeSpec, Spec, opt_of, recipe_key, same_path
from factory.engines.warm import keep_warm


def recipe_keys(spec: type[Spec]) -> dict[str, str]:
    """Recipe key -> the click parameter that takes it: every flag's key (older names included, which
    print their deprecation note when used), and an argument's name."""
    keys = {}
    for name, field in spec.model_fields.items():
        opt = opt_of(field)
        keys[name if opt.argument else recipe_key(opt.long(name))] = name
        for alias in opt.aliases:
            keys[recipe_key(alias)] = f"{name}{ALIAS}{recipe_key(alias)}"
        for also in opt.also:
            keys[recipe_key(also)] = name
    return keys


def recipe_parameters(command: click.Command) -> dict[str, str]:
    return recipe_keys(command.spec)


def resolve_command(group: click.Group, name: str) -> click.Command:
    """`label`, or a group's subcommand as `gold import`."""
    command: click.Command | None = group
    ctx = click.Context(group)
    for part in name.split():
        if not isinstance(command, click.Group) or (command := command.get_command(ctx, part)) is None:
            raise FactoryError(f"recipe: unknown command {name!r}; known: {', '.join(_runnable(group))}")
    if name.split() == ["run"]:  # a recipe that runs recipes would run this one's stages from within a stage
        raise FactoryError(f"recipe: a stage cannot be {name!r} (recipes do not nest); known: "
                           f"{', '.join(_runnable(group))}")
    if isinstance(command, click.Group) and not getattr(command, "invoke_without_command", False):
        raise FactoryError(f"recipe: {name!r} is a group; name one of its commands, e.g. '{name} "
                           f"{next(iter(command.commands))}'")
    return command


def _runnable(group: click.Group) -> list[str]:
    names = []
    for name, command in group.commands.items():
        if name == "run":
            continue
        if isinstance(command, click.Group):
            if getattr(command, "invoke_without_command", False):
                names.append(name)
            names += [f"{name} {sub}" for sub in command.commands]
        else:
            names.append(name)
    return names


def _one_line(stage: int, name: str, error: pydantic.ValidationError, fields: dict[str, str]) -> str:
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    key = next((k for k, f in fields.items() if f == field), field)
    if first["type"] == "missing":
        return f"recipe stage {stage} ({name}): missing key {key!r}"
    return f"recipe stage {stage} ({name}): key {key!r}: {first['msg']}"


class Stage:
    """One validated stage: its command, the values by click parameter, and its spec (for the graph)."""

    def __init__(self, name: str, command: click.Command, values: dict, spec: Spec):
        self.name, self.command, self.values, self.spec = name, command, values, spec


def load_recipe(path: Path, group: click.Group, folder: str | None = None) -> list[Stage]:
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
    planned = []
    for number, raw in enumerate(stages, start=1):
        if not isinstance(raw, dict) or not isinstance(raw.get("command"), str):
            raise FactoryError(f"recipe stage {number}: every [[stage]] needs command = \"...\"")
        name = raw["command"]
        command = resolve_command(group, name)
        keys = recipe_keys(command.spec)
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
        fields = {k: f.split(ALIAS)[0] for k, f in keys.items()}
        try:
            spec = command.spec.model_validate({f.split(ALIAS)[0]: v for f, v in values.items()})
        except pydantic.ValidationError as exc:
            raise FactoryError(_one_line(number, name, exc, fields)) from None
        planned.append(Stage(name, command, values, spec))
    check_stage_graph(planned)
    return planned


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


def command_line(command: click.Command, values: dict) -> list[str]:
    """The command line that gives `command` these values (shown as each stage starts)."""
    params = {p.name: p for p in command.params}
    argv: list[str] = []
    positional: list[str] = []
    for name, value in values.items():
        param = params[name]
        if value is None:
            continue
        if isinstance(param, click.Argument):
            positional += [str(v) for v in (value if isinstance(value, list) else [value])]
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag:
            argv.append(flag if value else (param.secondary_opts or [""])[0])
            continue
        for item in value if isinstance(value, list) else [value]:
            argv += [flag, str(item)]
    return [a for a in argv if a] + positional


def uses_engine(command: click.Command) -> bool:
    """Whether the command starts an LLM engine (its spec takes the engine options)."""
    return "engine" in command.spec.model_fields


@command(RecipeSpec)
def run(spec: RecipeSpec) -> None:
    group = click.get_current_context().parent.command
    planned = load_recipe(spec.recipe, group, spec.folder)
    with keep_warm() as engines:  # consecutive LLM stages share one engine start (factory/engines/warm.py)
        for number, stage in enumerate(planned, start=1):
            if not any(uses_engine(later.command) for later in planned[number - 1:]):
                engines.close_all()  # free the model's memory for the stages that do not need it
            console.rule(f"[bold]stage {number}/{len(planned)}: {stage.name}[/]")
            console.print(f"bin/generate {stage.name} {' '.join(command_line(stage.command, stage.values))}",
                          highlight=False, soft_wrap=True)
            # In this process, with the recipe's values as the command's defaults: click converts and checks
            # them as it does a command line. Each stage closes its run on the way out, so the next one
            # opens the same run folder.
            ctx = stage.command.make_context(f"generate {stage.name}", [], default_map=stage.values)
            with ctx:
                stage.command.invoke(ctx)
    console.rule(f"[bold green]recipe {spec.recipe} complete[/]")
