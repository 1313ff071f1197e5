"""Offline mode is the program's job: set before any Hugging Face, vLLM or Outlines import."""

from __future__ import annotations

import os

from factory.core.paths import CACHE_DIR

# Forced, whatever the user's shell says: no hub calls, no usage statistics, no telemetry.
_FORCED = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",
    "VLLM_NO_USAGE_STATS": "1",
    "VLLM_DO_NOT_TRACK": "1",
    "DO_NOT_TRACK": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "RAY_USAGE_STATS_ENABLED": "0",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
}

# Defaults that a user may override (measured on a 2-core CPU box; see README "Engine settings").
_DEFAULTS = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB; vLLM otherwise asks for 92% of the NUMA node and refuses to start
    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0",  # let the engine use every core instead of reserving one
    "VLLM_USE_AOT_COMPILE": "0",  # the AOT cache fails to reload and recompiles on every start
    "VLLM_HOST_IP": "127.0.0.1",
    # torch.distributed's Gloo groups (vLLM makes about a dozen on CPU, even for one process) otherwise look up the
    # machine's host name to pick an address: a DNS query to the site resolver whenever /etc/hosts lacks the name,
    # below the Python-level network guard. Bound to the loopback interface they resolve nothing. TensorPipe
    # (torch RPC) reads its own variable for the same choice.
    "GLOO_SOCKET_IFNAME": "lo",
    "TP_SOCKET_IFNAME": "lo",
    "VLLM_LOGGING_LEVEL": "ERROR",
}


def _cpu_bind() -> str:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    return ",".join(str(c) for c in cores)


def force_offline(guard_network: bool = True) -> None:
    os.environ.update(_FORCED)
    if guard_network:
        from factory.core import netguard

        netguard.install()
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", _cpu_bind())
    cache = CACHE_DIR
    os.environ.setdefault("HF_HOME", str(cache / "hf"))
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache / "vllm"))
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(cache / "inductor"))
    os.environ.setdefault("OUTLINES_CACHE_DIR", str(cache / "outlines"))
    os.environ.setdefault("TLDEXTRACT_CACHE", str(cache / "tldextract"))


# Third-party noise a user cannot act on (Triton and NUMA notices, deprecation warnings inside vLLM, its
# info logs, weight-loading bars): hidden unless -v. Set in the environment so engine processes inherit it.
_QUIET = {
    "PYTHONWARNINGS": "ignore",
    "TORCH_CPP_LOG_LEVEL": "ERROR",
    "TQDM_DISABLE": "1",
    "VLLM_LOGGING_LEVEL": "ERROR",
    "FACTORY_QUIET": "1",
}


def quiet_third_party(verbose: bool) -> None:
    """Hide third-party warnings and logs unless `verbose` (then vLLM logs at INFO)."""
    import warnings

    if verbose:
        os.environ["VLLM_LOGGING_LEVEL"] = "INFO"
        os.environ.pop("FACTORY_QUIET", None)
        return
    os.environ.update(_QUIET)
    warnings.simplefilter("ignore")
    quiet_loggers()


def quiet_loggers() -> None:
    import logging

    for name in ("torch", "torch._library", "torch.distributed", "vllm", "ray", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
