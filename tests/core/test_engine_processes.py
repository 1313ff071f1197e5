"""The real vLLM engine: its processes die with the command, and it sends nothing off the machine.

`bin/generate label` runs of the embedded model on a few sentences (about a minute each on 2 cores):

1. the session's reference run (tests/conftest.py `vllm_single_label_run`, shared with the scale-out and
   contract tests), traced with strace in a mount namespace whose /etc/hosts lacks this machine's host
   name: not one connect or send to a non-loopback address, nothing to port 53 (torch.distributed's Gloo
   groups looked the host name up through the site resolver, below the Python-level network guard, until
   factory/core/offline.py bound them to the loopback interface);
2. the same command SIGKILLed a few seconds after vLLM started its engine core and worker: none of its
   processes (engine core, worker, resource tracker) may survive it;
3. the same command again: it resumes and writes exactly the reference run's row ids;
4. the same command SIGTERMed once it has committed a shard: exit 130, its rows kept, nothing left running.

Without strace, unshare or root the reference run is made untraced and the traffic test is skipped.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT
from tests.core import processes

pytestmark = pytest.mark.engine


def _row_ids(out: Path) -> list[str]:
    return pl.read_parquet(sorted((out / "silver").glob("part-*.parquet")))["row_id"].to_list()


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


def test_a_label_run_sends_nothing_off_the_machine_even_when_the_host_name_is_unknown(vllm_single_label_run):
    reference = vllm_single_label_run
    if reference.trace is None:
        pytest.skip(reference.why_no_trace)
    offending, pids = _internet_calls(reference.trace)
    assert len(pids) >= 3, "strace did not follow the engine's processes"  # the command, engine core, worker
    assert not offending, f"{len(offending)} calls left loopback (DNS included):\n" + "\n".join(offending[:20])
    assert _row_ids(reference.run)


def test_sigkill_leaves_no_vllm_process_and_the_resume_writes_the_reference_rows(vllm_single_label_run, tmp_path):
    reference = vllm_single_label_run
    out, marker = tmp_path / "killed", uuid.uuid4().hex
    command = reference.argv("--out", out, "--shard-size", "2")  # the reference's command: it resumes to its rows
    env = {**reference.env, processes.MARKER: marker}
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                   start_new_session=True)
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

    resumed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    processes.kill_all(processes.marked(marker))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    ids = _row_ids(out)
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(_row_ids(reference.run))
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]


def test_sigterm_stops_a_vllm_run_keeping_its_rows(vllm_single_label_run, tmp_path):
    """SIGTERM once a shard is committed: exit 130, the committed rows kept (a subset of the reference run's), the
    stage marked interrupted, and no engine process left behind. How fast it stops is not judged here (a
    loaded machine would fail any bound): bin/bench's `vllm sigterm stop` measures it; the stop path's parts
    are unit-tested (tests/engines/test_vllm_offline.py, tests/stages/test_runner.py, tests/core/test_lifetime.py)."""
    import json

    reference = vllm_single_label_run
    out, marker = tmp_path / "terminated", uuid.uuid4().hex
    command = reference.argv("--out", out, "--shard-size", "1")
    env = {**reference.env, processes.MARKER: marker}
    with (tmp_path / "stderr").open("w") as stderr:
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                                   start_new_session=True)
    try:
        deadline = time.monotonic() + 600
        while process.poll() is None and time.monotonic() < deadline and not list(out.glob("silver/part-*.parquet")):
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before the kill: " + (tmp_path / "stderr").read_text()[-2000:]
        engine = processes.descendants(process.pid)
        started = time.monotonic()
        os.kill(process.pid, signal.SIGTERM)
        code = process.wait(timeout=60)
        seconds = time.monotonic() - started
        left = processes.survivors(engine, marker, process.pid, timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
        processes.kill_all(processes.marked(marker))
    stderr = (tmp_path / "stderr").read_text()
    assert code == 130, stderr[-2000:]
    assert "interrupted: committed shards are kept" in stderr and "Traceback" not in stderr, stderr[-2000:]
    assert not left, sorted(processes.describe(p) for p in left)
    ids = _row_ids(out)
    assert ids and set(ids) <= set(_row_ids(reference.run))
    assert json.loads((out / "manifest.json").read_text())["stages"]["silver"]["state"] == "interrupted"
    print(f"SIGTERM: exit 130 after {seconds:.2f} s (measured, not judged), {len(ids)} committed rows kept")
