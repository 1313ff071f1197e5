"""`bin/generate run RECIPE.toml`: a pipeline as a recipe, a list of stages run in order from one file.

Each `[[stage]]` names a command (`label`, `synthesize`, `check`, `consistency`, `dedup`, `check-phi`,
`export`, `gold import`, `compare`, `quality`, ...) and sets its options by their long names
(`per_category = 20` for `--per-category 20`; a positional argument by its name). Every option of a
command is a recipe key: the keys are read from the command itself, so they cannot drift apart. Values
may use `{run}`, the run folder set in `[run] folder` (or by `--folder`). Every stage is resumable, so
a recipe that stopped is rerun as it is and continues where it stopped.

The whole recipe is validated (pydantic models built from the commands' options) before the first
stage starts: an unknown key or a wrong type is one `error:` line naming the stage, the key and the
keys allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Optional

import click
import pydantic

from factory.cli.options import OutFolder, RegularFile
from factory.core.errors import FactoryError
from factory.core.progress import console
from factory.data.run_folder import release_run_locks
from factory.engines.warm import keep_warm


def option_key(param: click.Parameter) -> str:
    """The recipe key of an option: its long flag without dashes, with underscores (`--per-category` ->
    `per_category`); an argument's key is its name."""
    if isinstance(param, click.Option):
        longs = [o for o in param.opts if o.startswith("--")]
        return (longs[0] if longs else param.opts[0]).lstrip("-").replace("-", "_")
    return param.name


def _python_type(param: click.Parameter) -> Any:
    kind = param.type
    if isinstance(param, click.Option) and param.is_flag and not param.count:
        base: Any = bool
    elif isinstance(kind, click.Choice):
        base = Literal[tuple(kind.choices)]
    elif isinstance(kind, (click.IntRange,)) or kind is click.INT:
        base = int
    elif isinstance(kind, click.FloatRange) or kind is click.FLOAT:
        base = float
    else:
        base = str
    if getattr(param, "multiple", False) or (param.nargs not in (1, None) and not isinstance(param, click.Option)):
        base = list[base]
    return Optional[base]


def recipe_parameters(command: click.Command) -> dict[str, click.Parameter]:
    return {option_key(p): p for p in command.params
            if not (isinstance(p, click.Option) and (p.hidden or p.name in ("help", "version")))}


def stage_model(name: str, command: click.Command) -> type[pydantic.BaseModel]:
    """A pydantic model whose fields are exactly the command's recipe keys (plus `command`)."""
    fields = {key: (_python_type(p), None) for key, p in recipe_parameters(command).items()}
    return pydantic.create_model(f"Stage_{name.replace(' ', '_').replace('-', '_')}",
                                 __config__=pydantic.ConfigDict(extra="forbid", strict=False),
                                 command=(str, ...), **fields)


def resolve_command(group: click.Group, name: str) -> click.Command:
    """`label`, or a group's subcommand as `gold import`."""
    command: click.Command | None = group
    ctx = click.Context(group)
    for part in name.split():
        if not isinstance(command, click.Group) or (command := command.get_command(ctx, part)) is None:
            known = ", ".join(_runnable(group))
            raise FactoryError(f"recipe: unknown command {name!r}; known: {known}")
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


def _one_line(stage: int, name: str, error: pydantic.ValidationError, allowed: list[str]) -> str:
    first = error.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"recipe stage {stage} ({name}): unknown key {key!r}; allowed: {', '.join(sorted(allowed))}"
    if first["type"] == "missing":
        return f"recipe stage {stage} ({name}): missing key {key!r}"
    return f"recipe stage {stage} ({name}): key {key!r}: {first['msg']}"


def load_recipe(path: Path, group: click.Group, folder: str | None = None) -> list[tuple[str, click.Command, dict]]:
    """[(command name, command, options)] for every stage, validated before anything runs."""
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
        model = stage_model(name, command)
        try:
            values = model.model_validate(raw).model_dump(exclude_unset=True)
        except pydantic.ValidationError as exc:
            raise FactoryError(_one_line(number, name, exc, list(recipe_parameters(command)))) from None
        values.pop("command")
        _refuse_option_values(values, number, name)
        planned.append((name, command, _fill_run(values, folder, number, name)))
    return planned


def _refuse_option_values(values: dict, number: int, name: str) -> None:
    """A text value that starts with '-' would reach the command line as an option (`--help` printed help and
    ran nothing): refused, like any other wrong value, before anything runs."""
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and item.startswith("-"):
                raise FactoryError(f"recipe stage {number} ({name}): key {key!r}: {item!r} looks like an option, "
                                   f"not a value (a path starting with '-' can be written ./{item})")


def _fill_run(values: dict, folder: str | None, number: int, name: str) -> dict:
    def fill(value):
        if isinstance(value, str) and "{run}" in value:
            if not folder:
                raise FactoryError(f"recipe stage {number} ({name}) uses {{run}} but no [run] folder is set")
            return value.replace("{run}", folder)
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    return {key: fill(value) for key, value in values.items()}


def command_line(command: click.Command, values: dict) -> list[str]:
    """The argv that gives `command` these recipe values (click then parses and checks them as always)."""
    params = recipe_parameters(command)
    argv: list[str] = []
    positional: list[str] = []
    for key, value in values.items():
        param = params[key]
        if value is None:
            continue
        if isinstance(param, click.Argument):
            positional += [str(v) for v in (value if isinstance(value, list) else [value])]
            continue
        flag = next((o for o in param.opts if o.startswith("--")), param.opts[0])
        if param.is_flag and not param.count:
            if value:
                argv.append(flag)
            elif param.secondary_opts:
                argv.append(param.secondary_opts[0])
            continue
        for item in value if isinstance(value, list) else [value]:
            argv += [flag, str(item)]
    return argv + positional


def uses_engine(command: click.Command) -> bool:
    """Whether the command starts an LLM engine (it takes the shared engine options)."""
    return "engine" in recipe_parameters(command)


@click.command(name="run")
@click.argument("recipe", type=RegularFile("recipe"))
@click.option("--folder", type=OutFolder(path_type=str), default=None, help="Run folder for {run} (overrides the recipe's [run] folder).")
@click.pass_context
def run(click_ctx: click.Context, recipe: Path, folder: str | None) -> None:
    """Run a pipeline recipe (TOML): its stages in order, each resumable (see recipes/demo.toml)."""
    group = click_ctx.parent.command
    planned = load_recipe(recipe, group, folder)
    with keep_warm() as engines:  # consecutive LLM stages share one engine start (factory/engines/warm.py)
        for number, (name, command, values) in enumerate(planned, start=1):
            if not any(uses_engine(later) for _, later, _ in planned[number - 1:]):
                engines.close_all()  # free the model's memory for the stages that do not need it
            argv = command_line(command, values)
            console.rule(f"[bold]stage {number}/{len(planned)}: {name}[/]")
            console.print(f"bin/generate {name} {' '.join(argv)}", highlight=False, soft_wrap=True)
            try:
                command.main(args=argv, prog_name=f"generate {name}", standalone_mode=False)
            finally:
                release_run_locks()  # the next stage opens the same run folder
    console.rule(f"[bold green]recipe {recipe} complete[/]")
