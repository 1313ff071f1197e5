"""A stopped command exits at once (factory/core/lifetime.py `exit_now`): its atexit handlers run and its output is
flushed, and the interpreter's teardown, which took seconds after a vLLM run, is skipped."""

import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import atexit, sys
from factory.core.lifetime import exit_now

class Teardown:
    def __del__(self):
        print("teardown ran", flush=True)

kept = Teardown()
atexit.register(lambda: print("atexit ran"))
sys.stdout.write("unflushed output")
exit_now(130)
"""


def test_exit_now_runs_atexit_flushes_and_skips_the_teardown():
    plain = subprocess.run([sys.executable, "-c", SCRIPT.replace("exit_now(130)", "sys.exit(130)")], cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert plain.returncode == 130 and "teardown ran" in plain.stdout  # a normal exit does tear down
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 130, result.stderr
    assert "unflushed output" in result.stdout and "atexit ran" in result.stdout
    assert "teardown ran" not in result.stdout
