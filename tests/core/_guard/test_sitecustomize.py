"""The start-up hook of every Python process a factory command starts (factory/core/_guard/sitecustomize.py,
on PYTHONPATH): the network guard, death with the parent and quiet logs, each only when its variable asks,
and nothing at all otherwise. Each case runs a fresh interpreter, since the hook runs only at start-up."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.conftest import ROOT

GUARD = ROOT / "factory" / "core" / "_guard"
# Prints what the hook did: which factory modules it loaded, the parent-death signal (Linux prctl
# PR_GET_PDEATHSIG), a logger's level, and what a connection outside loopback met.
PROBE = """
import ctypes, json, logging, signal, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
death = ctypes.c_int(0)
libc.prctl(2, ctypes.byref(death), 0, 0, 0)
try:
    socket.create_connection(("203.0.113.7", 9), timeout=0.2)
    connect = "connected"
except Exception as exc:
    connect = type(exc).__name__
print(json.dumps({"factory": sorted(m for m in sys.modules if m.startswith("factory")),
                  "death_signal": death.value, "vllm_level": logging.getLogger("vllm").level, "connect": connect}))
"""


def probe(tmp_path, **flags: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("FACTORY_NETGUARD", "FACTORY_DIE_WITH_PARENT", "FACTORY_QUIET", "PYTHONPATH", "RAY_RAYLET_PID")}
    env.update(PYTHONPATH=str(GUARD), **flags)
    # run from an empty folder: the checkout is not on sys.path unless the hook puts it there
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_without_a_flag_the_hook_does_nothing(tmp_path):
    seen = probe(tmp_path)
    assert seen["factory"] == [] and seen["death_signal"] == 0 and seen["vllm_level"] == 0
    assert seen["connect"] != "EgressBlocked"  # whatever the sandbox does, the guard did not refuse it


def test_the_network_flag_installs_the_guard_from_the_checkout(tmp_path):
    seen = probe(tmp_path, FACTORY_NETGUARD="1")
    assert seen["connect"] == "EgressBlocked"
    assert "factory.core.netguard" in seen["factory"] and "factory.core.lifetime" not in seen["factory"]
    assert seen["death_signal"] == 0


def test_the_lifetime_flag_asks_for_sigkill_when_the_parent_dies(tmp_path):
    seen = probe(tmp_path, FACTORY_DIE_WITH_PARENT="1")
    assert seen["death_signal"] == 9  # SIGKILL
    assert "factory.core.netguard" not in seen["factory"] and seen["connect"] != "EgressBlocked"


def test_ray_processes_are_left_to_ray(tmp_path):
    """Ray ties its workers to their raylet itself; the hook does not add the parent-death signal there."""
    seen = probe(tmp_path, FACTORY_DIE_WITH_PARENT="1", FACTORY_NETGUARD="1", RAY_RAYLET_PID="12345")
    assert seen["death_signal"] == 0 and seen["connect"] == "EgressBlocked"


def test_quiet_mode_reaches_the_child_processes_loggers(tmp_path):
    assert probe(tmp_path, FACTORY_QUIET="1")["vllm_level"] == 40  # logging.ERROR
