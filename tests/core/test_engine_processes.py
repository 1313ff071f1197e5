"""The real vLLM engine: its processes die with the command, and it sends nothing off the machine.

Three `bin/generate label` runs of the embedded model on a few demo sentences (about a minute each on 2 cores):

1. the reference run, traced with strace in a mount namespace whose /etc/hosts lacks this machine's host
   name: not one connect or send to a non-loopback address, nothing to port 53 (torch.distributed's Gloo
   groups looked the host name up through the site resolver, below the Python-level network guard, until
   factory/core/offline.py bound them to the loopback interface);
2. the same command SIGKILLed a few seconds after vLLM started its engine core and worker: none of its
   processes (engine core, worker, resource tracker) may survive it;
3. the same command again: it resumes and writes exactly the reference run's row ids.

Without strace, unshare or root the first run is made untraced and the traffic test is skipped.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT
from tests.core import processes

pytestmark = pytest.mark.engine

GENERATE = ROOT / "bin" / "generate"
SYSCALLS = "connect,sendto,sendmsg,sendmmsg"


def _label_command(notes: Path, out: Path) -> list[str]:
    return [sys.executable, str(GENERATE), "label", "--notes", str(notes), "--out", str(out), "--limit", "8",
            "--shard-size", "2"]


def _hosts_without(name: str, folder: Path) -> Path:
    """A copy of /etc/hosts without any line naming `name` (this machine's host name)."""
    kept = []
    for line in Path("/etc/hosts").read_text(encoding="utf-8").splitlines():
        names = line.split("#")[0].split()[1:]
        if name not in names and name.split(".")[0] not in names:
            kept.append(line)
    path = folder / "hosts"
    path.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return path


def _why_no_trace(probe_dir: Path) -> str | None:
    """Why the traffic test cannot run here (None when it can)."""
    if not sys.platform.startswith("linux"):
        return "Linux only"
    for tool in ("strace", "unshare"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install strace util-linux)"
    if os.geteuid() != 0:
        return "unshare -m and a bind mount over /etc/hosts need root"
    hosts = _hosts_without(socket.gethostname(), probe_dir)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec strace -f -qq -o /dev/null true',
                            str(hosts)], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"no mount namespace or no ptrace here: {probe.stderr.strip()[:200]}"
    return None


def _row_ids(out: Path) -> list[str]:
    return pl.read_parquet(sorted((out / "silver").glob("part-*.parquet")))["row_id"].to_list()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: (run folder, notes folder, strace file or None, reason it is None)."""
    base = tmp_path_factory.mktemp("engine-processes")
    notes = base / "notes"
    notes.mkdir()
    for name in ("note_001.txt", "note_002.txt", "note_003.txt"):
        shutil.copy(ROOT / "data" / "demo" / "notes" / name, notes / name)
    out = base / "reference"
    why = _why_no_trace(base)
    trace = None
    command = _label_command(notes, out)
    if why is None:
        trace = base / "strace.txt"
        hosts = _hosts_without(socket.gethostname(), base)
        command = ["unshare", "-m", "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"', str(hosts),
                   "strace", "-f", "-qq", "-e", f"trace={SYSCALLS}", "-o", str(trace), *command]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return out, notes, trace, why


_ADDRESS = re.compile(r'sa_family=(AF_INET6?), sin6?_port=htons\((\d+)\),(?: sin6_flowinfo=[^,]*,)? '
                      r'(?:sin_addr=inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)")')


def _internet_calls(trace: Path) -> tuple[list[str], set[str]]:
    """(calls to a non-loopback address or to port 53, pids seen) in an `strace -f -o` file."""
    import ipaddress

    offending, pids = [], set()
    for line in trace.read_text(encoding="utf-8", errors="replace").splitlines():
        pid, _, call = line.partition(" ")
        pids.add(pid)
        for _family, port, ipv4, ipv6 in _ADDRESS.findall(call):
            address = ipaddress.ip_address(ipv4 or ipv6)
            mapped = getattr(address, "ipv4_mapped", None)
            local = (mapped or address).is_loopback or (mapped or address).is_unspecified
            if not local or int(port) == 53:
                offending.append(line[:300])
    return offending, pids


def test_a_label_run_sends_nothing_off_the_machine_even_when_the_host_name_is_unknown(reference):
    out, _, trace, why = reference
    if trace is None:
        pytest.skip(why)
    offending, pids = _internet_calls(trace)
    assert len(pids) >= 3, "strace did not follow the engine's processes"  # the command, engine core, worker
    assert not offending, f"{len(offending)} calls left loopback (DNS included):\n" + "\n".join(offending[:20])
    assert _row_ids(out)


def test_sigkill_leaves_no_vllm_process_and_the_resume_writes_the_reference_rows(reference, tmp_path):
    ref_out, notes, _, _ = reference
    out, marker = tmp_path / "killed", uuid.uuid4().hex
    command = _label_command(notes, out)
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr,
                                   env={**os.environ, processes.MARKER: marker}, start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        worker_seen = None
        while process.poll() is None and time.monotonic() < deadline:
            below = processes.descendants(process.pid)
            # vLLM's worker is a child of its engine core: a process two levels below the command
            if any(processes.descendants(child) for child in below):
                worker_seen = worker_seen or time.monotonic()
                if time.monotonic() - worker_seen >= 3:
                    break
            time.sleep(0.2)
        assert process.poll() is None, "the run ended before the kill: " + (tmp_path / "stderr").read_text()[-2000:]
        engine = processes.descendants(process.pid)
        described = sorted(processes.describe(p) for p in engine)
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=60) == -signal.SIGKILL
        left = processes.survivors(engine, marker, process.pid, timeout=10)
        left_described = sorted(processes.describe(p) for p in left)
    finally:
        if process.poll() is None:
            process.kill()
        processes.kill_all(processes.marked(marker))
    assert len(engine) >= 3, described  # engine core, worker, resource tracker
    assert not left, f"vLLM processes outlived the killed command: {left_described}"

    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900,
                             env={**os.environ, processes.MARKER: marker})
    processes.kill_all(processes.marked(marker))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ids = _row_ids(out)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(_row_ids(ref_out))
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]
