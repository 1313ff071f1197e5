"""No egress: a factory process, and the processes it starts, cannot connect outside loopback."""

import socket
import subprocess
import sys

import pytest

from factory.core import netguard
from tests.conftest import ROOT

SCRIPT = """
import socket, subprocess, sys
from factory.core.offline import force_offline
force_offline()
def phone_home():
    socket.create_connection(("{host}", 443), timeout=1)
try:
    phone_home()
except ConnectionRefusedError as exc:
    print("parent:", exc)
child = subprocess.run([sys.executable, "-c", "import socket; socket.create_connection(('{host}', 443), timeout=1)"],
                       capture_output=True, text=True)
print("child:", child.stderr.strip().splitlines()[-1])
"""


@pytest.mark.parametrize("host", ["203.0.113.7", "example.org", "2001:db8::1"])
def test_outbound_connections_are_refused_and_named(host):
    result = subprocess.run([sys.executable, "-c", SCRIPT.format(host=host)], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    parent, child = result.stdout.strip().splitlines()
    assert "network egress blocked" in parent and "(phone_home)" in parent and host in parent
    assert "EgressBlocked: network egress blocked" in child and host in child


def test_loopback_stays_open():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        netguard.install()  # idempotent; conftest installed it already
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            pass
        with socket.create_connection(("localhost", port), timeout=2):
            pass


@pytest.mark.parametrize(
    ("host", "local"),
    [("127.0.0.1", True), ("127.8.9.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", True),
     ("10.0.0.1", False), ("192.168.1.1", False), ("8.8.8.8", False), ("hub.example", False)],
)
def test_loopback_classification(host, local):
    assert netguard._is_loopback(host) is local
