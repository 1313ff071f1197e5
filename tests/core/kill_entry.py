"""Test entry for the kill test (tests/core/test_kill.py): `bin/generate`'s own command line and entry
point (`factory.cli.main.run`: SIGTERM handling, message, exit code, children that die with the command),
with two test-only changes made here, not in the program:

- `--engine` also takes `module:Callable` (factory.engines.load_engine supports it), so the test can run
  the model-free tests.core.slow_engine:SlowEngine;
- every stage commits every FACTORY_KILL_COMMIT_ROWS finished units (default 2) and every
  FACTORY_KILL_COMMIT_SECONDS (default 0.5), so a kill falls between many commits;
- `label` skips its advisory tokenizer check, which would import transformers for nothing here.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

if __name__ == "__main__":  # the engine's spawned processes re-import this file
    sys.path.insert(0, ROOT)
    import click

    from factory.cli.main import run  # first: offline mode and the process guards before other imports
    from factory.cli import generate

    for command in (generate.label, generate.synthesize):
        for param in command.params:
            if param.name == "engine":
                param.type = click.STRING

    from factory import api

    make_context = api.stage_context

    def stage_context(spec, *args, **kwargs):
        context = make_context(spec, *args, **kwargs)
        context.commit_rows = int(os.environ.get("FACTORY_KILL_COMMIT_ROWS", "2"))
        context.commit_seconds = float(os.environ.get("FACTORY_KILL_COMMIT_SECONDS", "0.5"))
        return context

    api.stage_context = stage_context
    api.warn_shared_leading_tokens = lambda *args: None  # advisory, and it imports transformers (~10 s)
    run()
