"""What a kill test needs to know about processes: every process a command started (at any depth), and
whether any of them outlived it. Linux /proc only."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

PROC = Path("/proc")
MARKER = "FACTORY_KILL_TRIAL"  # an environment variable every process below a test command inherits


def state(pid: int) -> str | None:
    """The process state letter (R, S, Z, ...), or None when there is no such process."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2:].split()[0]


def alive(pid: int) -> bool:
    """A zombie is dead: it holds no memory, only a slot in the process table until someone reaps it."""
    return state(pid) not in (None, "Z", "X")


def descendants(pid: int) -> set[int]:
    """Every live process below `pid`, through the children lists of all its threads (a thread can start a
    process too), recursively."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for children in (PROC / str(current) / "task").glob("*/children"):
            try:
                pids = [int(p) for p in children.read_text().split()]
            except OSError:
                continue
            for child in pids:
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return {p for p in found if alive(p)}


def marked(marker: str) -> set[int]:
    """Live processes whose environment carries MARKER=marker: everything a command started, even what was
    reparented to PID 1 after it died (an environment cannot be dropped by a child that never exec'd without it)."""
    needle = f"{MARKER}={marker}".encode()
    found = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            found.add(int(entry.name))
    return found


def in_session(sid: int) -> set[int]:
    """Live processes of session `sid` (a command started with start_new_session=True leads its own)."""
    found = set()
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.add(int(entry.name))
    return found


def survivors(pids: set[int], marker: str, sid: int, timeout: float = 10.0) -> set[int]:
    """What is still alive of `pids`, of the marked processes and of the session after `timeout` seconds
    (empty as soon as all are gone)."""
    deadline = time.monotonic() + timeout
    while True:
        left = {p for p in pids if alive(p)} | marked(marker) | in_session(sid)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def describe(pid: int) -> str:
    try:
        cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        cmdline = "?"
    return f"{pid} [{state(pid)}] {cmdline[:120]}"


def kill_all(pids: set[int]) -> None:
    """Clean-up after a failed check, so a failing test does not leave engines behind either."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
