"""Processes die with the command that started them, and SIGTERM stops a command like Ctrl-C.

Engines start processes of their own (vLLM's engine core and its workers, multiprocessing's resource
tracker, engine replicas). If the command is killed (SIGKILL, an OOM kill, a closed terminal) those
children would be reparented to PID 1 and keep gigabytes of memory or a GPU. Each Python child of a
factory command asks the kernel for SIGKILL when its parent dies (Linux `PR_SET_PDEATHSIG`): the
children started directly by the factory call `die_with_parent()`, and every other Python child inherits
it through the `sitecustomize` in factory/core/_guard, which the network guard already puts on
PYTHONPATH.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1
ENV_FLAG = "FACTORY_DIE_WITH_PARENT"


def die_with_parent() -> bool:
    """Ask for SIGKILL when the parent process exits; False where the platform cannot (not Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    # The parent may have died before the request was made: then we are orphaned already.
    if os.getppid() == 1:
        os._exit(1)
    return True


def children_die_with_this_process() -> None:
    """Every Python process started below this one (at any depth) dies with its parent."""
    os.environ[ENV_FLAG] = "1"


def exit_now(code: int) -> None:
    """Exit at once once a command has stopped (Ctrl-C, SIGTERM): the atexit handlers run and the output is
    flushed, but the interpreter's final garbage collection and module teardown are skipped. After a vLLM
    run they took seconds (measured: most of an 8 s exit), past the grace period a service manager gives
    before SIGKILL; nothing the factory wrote depends on them (shards and the manifest are on disk)."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there
            pass
    os._exit(code)


def terminate_like_interrupt() -> None:
    """SIGTERM raises KeyboardInterrupt in the main thread, so a stage stops the way Ctrl-C stops it:
    committed shards kept, the stage marked interrupted, one message, exit 130."""

    def _raise(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
