"""`bin/generate`: the factory's command line.

Every command forces offline mode first, turns FactoryError into one `error:` line with exit code 2,
and exits 0 only when the run completed.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from factory.core.errors import FactoryError
from factory.core.lifetime import children_die_with_this_process, exit_now, terminate_like_interrupt
from factory.core.offline import force_offline, quiet_third_party

force_offline()  # before anything imports transformers, vLLM or Outlines
children_die_with_this_process()

from factory.cli import generate, housekeeping, privacy, quality, recipe, review, trainer  # noqa: E402


CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class PipelineGroup(click.Group):
    """Lists commands in the order they were registered (pipeline order), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(cls=PipelineGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(package_name="clinical-data-factory")
@click.option("-v", "--verbose", is_flag=True, help="Show third-party warnings and vLLM's info logs.")
def main(verbose: bool) -> None:
    """Offline clinical data factory: a local LLM labels real sentences (silver) and writes new ones
    (bronze) for Alzheimer's disease sign-and-symptom classifiers. No text leaves this machine."""
    quiet_third_party(verbose)


# Pipeline order: generate, judge, gate and share, train and compare, then housekeeping.
for _command in (recipe.run, generate.label, generate.synthesize, quality.check, quality.consistency, quality.dedup,
                 privacy.check_phi, privacy.export, trainer.gold, trainer.compare, trainer.train, trainer.predict,
                 quality.quality, review.review, housekeeping.schemas, housekeeping.prepare_model, housekeeping.models, housekeeping.runs):
    main.add_command(_command)


INTERRUPTED = 130  # the exit code of a command stopped by Ctrl-C or SIGTERM


def run() -> None:
    """Entry point of `bin/generate`. A stopped command exits at once (exit_now): a service manager's
    SIGTERM is followed by SIGKILL after a few seconds."""
    try:
        run_command(main)
    except SystemExit as exc:
        if exc.code == INTERRUPTED:
            exit_now(INTERRUPTED)
        raise


_HELP_INSTEAD = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2


def one_line(message: str) -> str:
    """A message that quotes a library's multi-line text still prints as one line."""
    return " ".join(part.strip() for part in message.strip().splitlines() if part.strip())


def click_error_line(exc: click.ClickException) -> str:
    """Click's own refusals (a wrong option, a value out of range) as one line, like every other error;
    click would print the usage and a hint on lines of their own."""
    message = one_line(exc.format_message())
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click.UsageError) and ctx is not None:
        message += f" (see `{ctx.command_path} --help`)"
    return message


def run_command(command: click.Command, args: list[str] | None = None) -> None:
    """Run a click command the factory's way: one line for a user error, a traceback only when
    FACTORY_DEBUG=1, SIGTERM handled like Ctrl-C. `args` (default: sys.argv) lets tests run it in-process."""
    terminate_like_interrupt()
    try:
        if args is None:
            command(standalone_mode=False)
        else:
            command.main(args=args, prog_name="generate", standalone_mode=False)
    except (KeyboardInterrupt, click.exceptions.Abort):  # click reports Ctrl-C as Abort
        click.echo("interrupted: committed shards are kept; rerun the same command to resume", err=True)
        sys.exit(INTERRUPTED)
    except _HELP_INSTEAD as exc:  # a group named without a command: its help, as before
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {click_error_line(exc)}", err=True)
        sys.exit(exc.exit_code)
    except FactoryError as exc:
        click.echo(f"error: {one_line(str(exc))}", err=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
        if os.environ.get("FACTORY_DEBUG"):
            traceback.print_exc()
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        click.echo(f"error: internal error: {type(exc).__name__}: {first} (set FACTORY_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)
