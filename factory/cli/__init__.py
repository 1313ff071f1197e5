"""`bin/generate`: one click group, commands registered explicitly (factory/cli/main.py)."""

from factory.cli.main import main, run

__all__ = ["main", "run"]
