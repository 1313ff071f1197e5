"""Runs at the start of every Python process a factory command starts: the network guard, and death
with the parent (factory/core/lifetime.py), so no engine process outlives the command."""

import os
import sys

if os.environ.get("FACTORY_QUIET") == "1":  # engine processes stay as quiet as the command (see -v)
    import logging as _logging

    for _name in ("torch", "torch._library", "torch.distributed", "vllm", "transformers"):
        _logging.getLogger(_name).setLevel(_logging.ERROR)

if os.environ.get("FACTORY_NETGUARD") == "1" or os.environ.get("FACTORY_DIE_WITH_PARENT") == "1":
    _root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if _root not in sys.path:
        sys.path.append(_root)  # after everything else: never shadows an installed package
    # Ray ties the processes it starts to their raylet itself (RAY_RAYLET_PID); a raylet thread that forks a
    # worker may end while the worker should live on, so Ray's processes are left to Ray.
    if os.environ.get("FACTORY_DIE_WITH_PARENT") == "1" and "RAY_RAYLET_PID" not in os.environ:
        from factory.core import lifetime

        lifetime.die_with_parent()
    if os.environ.get("FACTORY_NETGUARD") == "1":
        from factory.core import netguard

        netguard.install()
