"""Refuse every non-loopback network connection for the life of the process (and its children).

Offline environment variables only ask libraries to behave; this guard enforces it. A Python audit
hook sees every `socket.connect` and every DNS lookup, and raises for any address outside loopback,
naming the code that tried. Child processes (vLLM's engine core, Ray workers) install the same hook at
start-up through the `sitecustomize` module in `factory/core/_guard/`, which `install()` puts on PYTHONPATH.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
import traceback
from pathlib import Path

ENV_FLAG = "FACTORY_NETGUARD"
LOG_FLAG = "FACTORY_NETGUARD_LOG"  # "1": also print each refusal to stderr, for processes whose caller
# swallows the exception (Ray's cloud-metadata probe); their stderr is their log file
_GUARD_DIR = Path(__file__).resolve().parent / "_guard"
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}
_installed = False


class EgressBlocked(ConnectionRefusedError):
    """A connection to a non-loopback address was attempted and refused."""


def _is_loopback(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    host = str(host).strip("[]").split("%")[0].lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name we would have to resolve: not local
    return address.is_loopback or address.is_unspecified


def _culprit() -> str:
    """The innermost frame outside the socket machinery: who asked for the connection."""
    skip = ("socket.py", "ssl.py", "netguard.py", "connection.py", "connectionpool.py", "client.py")
    for frame in reversed(traceback.extract_stack()[:-2]):
        if not frame.filename.endswith(skip):
            return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return "unknown caller"


def _refuse(target: str) -> None:
    message = f"network egress blocked: {_culprit()} tried to connect to {target}; this program runs offline"
    if os.environ.get(LOG_FLAG) == "1":
        print(message, file=sys.stderr, flush=True)
    raise EgressBlocked(message)


def _audit(event: str, args: tuple) -> None:
    if event == "socket.connect":
        sock, address = args
        if getattr(sock, "family", None) in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            if not _is_loopback(address[0]):
                _refuse(f"{address[0]}:{address[1]}")
    elif event == "socket.getaddrinfo":
        host, port = args[0], args[1]
        if not _is_loopback(host):
            _refuse(f"{host!s}:{port}")


def install() -> None:
    """Install the guard in this process and arrange for child Python processes to install it too."""
    global _installed
    os.environ[ENV_FLAG] = "1"
    paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(_GUARD_DIR) not in paths:
        os.environ["PYTHONPATH"] = os.pathsep.join([str(_GUARD_DIR), *paths])
    if not _installed:
        sys.addaudithook(_audit)
        _installed = True


_SIOCGIFFLAGS = 0x8913  # Linux ioctl: an interface's flags, as seen from this process's network namespace
_IFF_UP = 0x1


def _interface_up(name: str) -> bool | None:
    """Whether network interface `name` is up in this network namespace (None: cannot tell, not Linux)."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl
    import struct

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            answer = fcntl.ioctl(probe.fileno(), _SIOCGIFFLAGS, struct.pack("16sH14s", name.encode(), 0, b""))
    except OSError:
        return None
    return bool(struct.unpack("16sH14s", answer)[1] & _IFF_UP)


def loopback_problem() -> str | None:
    """Why processes of this machine cannot reach each other over 127.0.0.1 (None when they can).

    vLLM's engine (even a single-process one: its Gloo group binds to `lo`) and Ray find their own
    processes on the loopback interface. In a network namespace where it is down (`unshare -n` without
    `ip link set lo up`) the engine fails deep in its start-up ("Unable to find address for: lo")."""
    if _interface_up("lo") is False:
        return "interface lo is down"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.bind(("127.0.0.1", 0))
    except OSError as exc:
        return f"127.0.0.1 cannot be bound: {exc.strerror or exc}"
    return None
