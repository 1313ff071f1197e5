"""Run `bin/generate` as a user does, and fingerprint a folder to prove a refused command changed nothing."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT


def generate(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "bin" / "generate"), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def tree_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file (and a marker for every folder) under `folder`, by relative path."""
    folder = Path(folder)
    hashes = {}
    for path in sorted(folder.rglob("*")):
        key = path.relative_to(folder).as_posix()
        hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<dir>"
    return hashes


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """One `error:` line on stderr, exit code 2, no traceback; returns the message."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert "internal error" not in lines[0] and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def generate_in_process(*args) -> subprocess.CompletedProcess:
    """`bin/generate ARGS` in this process (no interpreter start, no imports again): the factory's own
    run_command (one-line errors, exit codes) inside click's stream isolation. The result looks like
    generate()'s, so assert_refused applies."""
    from click.testing import CliRunner

    from factory.cli.main import main, run_command

    argv = list(map(str, args))
    code = 0
    with CliRunner().isolation() as (stdout, stderr, _):
        try:
            run_command(main, argv)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = (stream.getvalue().decode("utf-8", "replace") for stream in (stdout, stderr))
    return subprocess.CompletedProcess(["generate", *argv], code, out, err)
