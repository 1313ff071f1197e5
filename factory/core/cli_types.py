"""How a command spec (factory/core/specs.py) becomes click parameters: the input types every option's check
comes from, a spec's parameters, and the spec again from the parsed values.

Input checks are declared with the option: every numeric and path option takes one of these types, so a new
option gets its range, finiteness and file-kind checks by saying what it is (`Opt.kind`), and bad input is
refused in one line before a command reads or writes anything. The CLI (factory/cli/options.py) makes its
commands from `params_of`; recipes (factory/recipes.py) name a stage's values by the same parameters, so
both sit below them here.
"""

from __future__ import annotations

import math
import os
import stat
import types
import typing
from pathlib import Path

import click

from factory.core import specs
from factory.core.errors import FactoryError
from factory.core.specs import MAX_COUNT, MAX_SEED, Spec, opt_of

# ---------------------------------------------------------------------------------------------------------
# Input types


class FiniteFloat(click.FloatRange):
    """A float in a range that is also a real number: click's FloatRange lets `nan` through (it compares
    false with every bound), and `inf` where a side is open-ended; either then fails deep in a library."""

    name = "number"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return super().convert(number, param, ctx)


def count(min: int = 1, max: int = MAX_COUNT) -> click.IntRange:
    """A whole number of things (rows, tokens, workers), bounded on both sides."""
    return click.IntRange(min=min, max=max)


SEED = click.IntRange(min=0, max=MAX_SEED)


class SeedList(click.ParamType):
    """Comma-separated seeds (`0,1,2`), each a SEED; the text is passed on as given."""

    name = "seeds"

    def convert(self, value, param, ctx):
        parts = [part.strip() for part in str(value).split(",") if part.strip()]
        if not parts:
            self.fail(f"{value!r} holds no seed; give comma-separated integers, e.g. 0,1,2", param, ctx)
        for part in parts:
            try:
                seed = int(part)
            except ValueError:
                self.fail(f"{part!r} is not an integer; give comma-separated integers, e.g. 0,1,2", param, ctx)
            if not 0 <= seed <= MAX_SEED:
                self.fail(f"seed {seed} is not in the range 0<=x<={MAX_SEED}", param, ctx)
        return value


def _flag(param) -> str:
    longs = [o for o in getattr(param, "opts", []) if o.startswith("--")]
    return longs[0] if longs else (param.human_readable_name if param is not None else "value")


def _special_kind(mode: int) -> str | None:
    """What a path is when it is neither a regular file nor a folder (reading one can block forever)."""
    for test, kind in ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return kind
    return None


def _stat(path: Path, flag: str, what: str) -> os.stat_result | None:
    """The path's status (None when it does not exist), or one error line for a path that cannot be looked at."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as exc:  # ValueError: a NUL byte in the name
        raise FactoryError(f"{flag}: cannot look at {what} {path}: {getattr(exc, 'strerror', None) or exc}") from None


class InputPath(click.ParamType):
    """An existing path to read: a regular file (`file`) and/or a folder (`folder`). A named pipe, socket
    or device is refused, since reading one waits for a writer that may never come. Errors are
    FactoryError (one `error:` line) naming the option and what it should be."""

    name = "path"

    def __init__(self, what: str, file: bool = True, folder: bool = False, missing: str | None = None):
        self.what, self.file, self.folder = what, file, folder
        self.missing = missing or f"{what} not found: {{path}}"  # what to say when nothing is there

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        info = _stat(path, flag, self.what)
        if info is None:
            raise FactoryError(f"{flag}: {self.missing.format(path=path)}")
        special = _special_kind(info.st_mode)
        if special:
            raise FactoryError(f"{flag}: {path} is {special}, not a {self._wanted()} (reading it would wait for a "
                               "writer); give a regular file")
        if stat.S_ISDIR(info.st_mode) and not self.folder:
            raise FactoryError(f"{flag}: {self.what} {path} is a folder; give a file")
        if not stat.S_ISDIR(info.st_mode) and not self.file:
            raise FactoryError(f"{flag}: {self.what} {path} is a file; give a folder")
        return path

    def _wanted(self) -> str:
        return "file or folder" if self.file and self.folder else "file" if self.file else "folder"


class NameOrFolder(click.ParamType):
    """A name (of a catalogue model, of a run under --root) or a folder: a path that exists must be a folder."""

    name = "name|folder"

    def __init__(self, what: str):
        self.what = what

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        info = _stat(path, flag, self.what)
        if info is not None and not stat.S_ISDIR(info.st_mode):
            kind = _special_kind(info.st_mode) or "a file"
            raise FactoryError(f"{flag}: {path} is {kind}; give a {self.what} folder or name")
        return path


class OutFolder(click.ParamType):
    """A folder to write into: new, or an existing folder (what may be in it is the command's own rule,
    factory/data/output_folder.py); never a file, a pipe, or a path below a file."""

    name = "folder"

    def __init__(self, path_type: type = Path):
        self.path_type = path_type

    def convert(self, value, param, ctx):
        path, flag = Path(value), _flag(param)
        for ancestor in (path, *path.parents):
            info = _stat(ancestor, flag, "folder")
            if info is None:
                continue
            if stat.S_ISDIR(info.st_mode):
                break
            kind = _special_kind(info.st_mode) or "a file"
            if ancestor == path:
                raise FactoryError(f"{flag} must be a folder: {path} is {kind}; nothing was changed")
            raise FactoryError(f"{flag} {path} cannot be made: {ancestor} is {kind}; nothing was changed")
        return value if self.path_type is str else path


# ---------------------------------------------------------------------------------------------------------
# Parameters from specs: every option is made from its spec field, so a flag is declared once (in the spec)
# and its check, default and help travel with it to every command and recipe that takes it.


def click_type(kind, annotation) -> click.ParamType | None:
    """The click type that checks a spec field's kind (None: click's plain text)."""
    if isinstance(kind, specs.Count):
        return count(kind.min, kind.max)
    if isinstance(kind, specs.Number):
        return FiniteFloat(min=kind.min, max=kind.max, min_open=kind.min_open, max_open=kind.max_open)
    if isinstance(kind, specs.Choice):
        return click.Choice(kind.values)
    if isinstance(kind, specs.Seed):
        return SEED
    if isinstance(kind, specs.Seeds):
        return SeedList()
    if isinstance(kind, specs.Read):
        return InputPath(kind.what, file=kind.file, folder=kind.folder, missing=kind.missing)
    if isinstance(kind, specs.NameOrFolder):
        return NameOrFolder(kind.what)
    if isinstance(kind, specs.Write):
        return OutFolder(path_type=str if kind.as_text else Path)
    choices = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()
    return click.Choice(choices) if choices else None


def _inner(annotation):
    """`Optional[X]` -> X, `list[X]` -> X; whether it is a list."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        annotation = args[0]
    if typing.get_origin(annotation) is list:
        return typing.get_args(annotation)[0], True
    return annotation, False


ALIAS = "__alias__"  # the name of a deprecated flag's hidden option: <field>__alias__<its recipe key>


def params_of(spec: type[Spec]) -> list[click.Parameter]:
    """A spec's click parameters: one per field (named as the field), plus a hidden one per older flag name."""
    params: list[click.Parameter] = []
    own = [n for klass in spec.__mro__ for n in vars(klass).get("__annotations__", {}) if n in spec.model_fields]
    order = list(dict.fromkeys(own))  # the command's own fields first, then the shared groups'
    for name, field in sorted(spec.model_fields.items(), key=lambda item: order.index(item[0])):
        opt = opt_of(field)
        annotation, multiple = _inner(field.annotation)
        kind = click_type(opt.kind, annotation)
        default = None if field.is_required() else field.default
        if opt.argument:
            params.append(click.Argument([name], type=kind, required=field.is_required()))
            continue
        names = [opt.long(name), *opt.also, *([opt.short] if opt.short else [])]
        common = dict(help=opt.help or None, metavar=opt.metavar)
        if annotation is bool:
            decls = [f"{opt.long(name)}/{opt.off}"] if opt.off else names
            params.append(click.Option([*decls, name], is_flag=True, default=default,
                                       show_default=opt.show_default, **common))
        else:
            # a required option gets no default at all: click (8.3 on) takes an explicit None as a value given,
            # and the command would run without it
            given = {} if field.is_required() else {"default": [] if multiple else default}
            # a required flag with an older name may come by either: build_spec asks for it after both
            params.append(click.Option([*names, name], type=kind, multiple=multiple,
                                       required=field.is_required() and not opt.aliases,
                                       show_default=opt.show_default, **given, **common))
        for alias in opt.aliases:  # an older name: still read, with a note (build_spec)
            hidden = [alias, f"{name}{ALIAS}{specs.recipe_key(alias)}"]
            params.append(click.Option(hidden, is_flag=True, default=None, hidden=True) if annotation is bool else
                          click.Option(hidden, type=kind, default=None, hidden=True, multiple=multiple))
    return params


def build_spec(spec: type[Spec], values: dict, command: str | None = None):
    """The spec from parsed values; an older flag's value is taken with one deprecation line on stderr."""
    values = dict(values)
    for key in [k for k in values if ALIAS in k]:
        value = values.pop(key)
        if value is None or value == ():
            continue
        name, alias = key.split(ALIAS)
        alias = "--" + alias.replace("_", "-")
        flag = opt_of(spec.model_fields[name]).long(name)
        click.echo(f"note: {command or spec.COMMAND} {alias} is deprecated; use {flag} (same value)", err=True)
        values[name] = value
    for name, field in spec.model_fields.items():
        if field.is_required() and values.get(name, ...) is None and opt_of(field).aliases:
            raise click.UsageError(f"Missing option '{opt_of(field).long(name)}'.", click.get_current_context(silent=True))
    # an option not given takes the field's default (a field optional in one command only, e.g. quality's
    # --run, keeps its shared type and gets None from its default, not from the command line)
    values = {k: (list(v) if isinstance(v, tuple) else v) for k, v in values.items()
              if v is not None or spec.model_fields[k].is_required()}
    try:
        return spec.model_validate(values)
    except Exception as exc:  # the click types checked every value; this is a contract slip, said in one line
        raise FactoryError(f"{command or spec.COMMAND}: {exc}") from None
