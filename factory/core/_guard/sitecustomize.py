"""Installs the factory's network guard in child Python processes started by a factory command."""

import os
import sys

if os.environ.get("FACTORY_NETGUARD") == "1":
    _root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    if _root not in sys.path:
        sys.path.append(_root)  # after everything else: never shadows an installed package
    from factory.core import netguard

    netguard.install()
