"""Offline mode: the hub, telemetry and usage-statistics switches are forced, engine defaults only set when
the user has not set them, and third-party noise hidden unless -v."""

import logging
import os
import warnings

import pytest

from factory.core import offline
from factory.core.paths import CACHE_DIR


@pytest.fixture
def environ(monkeypatch):
    """Every variable offline mode touches starts unset; monkeypatch restores them after the test."""
    for key in [*offline._FORCED, *offline._DEFAULTS, *offline._QUIET, "VLLM_CPU_OMP_THREADS_BIND", "HF_HOME",
                "VLLM_CACHE_ROOT", "TORCHINDUCTOR_CACHE_DIR", "OUTLINES_CACHE_DIR", "TLDEXTRACT_CACHE"]:
        monkeypatch.delenv(key, raising=False)
    return monkeypatch


def test_forced_switches_override_the_users_shell(environ):
    environ.setenv("HF_HUB_OFFLINE", "0")
    environ.setenv("VLLM_NO_USAGE_STATS", "0")
    offline.force_offline(guard_network=False)
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert os.environ["VLLM_NO_USAGE_STATS"] == "1" and os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert os.environ["TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS"] == ""  # no suffix-list download


def test_defaults_yield_to_the_user_and_caches_go_under_the_project(environ):
    environ.setenv("VLLM_CPU_KVCACHE_SPACE", "8")
    environ.setenv("HF_HOME", "/elsewhere/hf")
    offline.force_offline(guard_network=False)
    assert os.environ["VLLM_CPU_KVCACHE_SPACE"] == "8" and os.environ["HF_HOME"] == "/elsewhere/hf"
    assert os.environ["GLOO_SOCKET_IFNAME"] == "lo" and os.environ["VLLM_HOST_IP"] == "127.0.0.1"
    assert os.environ["VLLM_CACHE_ROOT"] == str(CACHE_DIR / "vllm")
    assert os.environ["OUTLINES_CACHE_DIR"] == str(CACHE_DIR / "outlines")
    cores = os.environ["VLLM_CPU_OMP_THREADS_BIND"].split(",")
    assert cores and [int(c) for c in cores] == sorted(os.sched_getaffinity(0))


def test_the_network_guard_is_installed_unless_asked_not_to(environ):
    calls = []
    environ.setattr("factory.core.netguard.install", lambda: calls.append("install"))
    offline.force_offline(guard_network=False)
    assert calls == []
    offline.force_offline()
    assert calls == ["install"]


def test_quiet_hides_third_party_logs_and_verbose_brings_them_back(environ):
    loggers = [logging.getLogger(name) for name in ("torch", "torch._library", "torch.distributed", "vllm", "ray",
                                                    "transformers")]
    for logger in loggers:  # restored after the test: other tests keep their logging
        environ.setattr(logger, "level", logging.NOTSET)
    with warnings.catch_warnings():
        offline.quiet_third_party(verbose=False)
        assert os.environ["FACTORY_QUIET"] == "1" and os.environ["TQDM_DISABLE"] == "1"
        assert all(logger.level == logging.ERROR for logger in loggers)
        assert warnings.filters[0][0] == "ignore"
    offline.quiet_third_party(verbose=True)
    assert "FACTORY_QUIET" not in os.environ and os.environ["VLLM_LOGGING_LEVEL"] == "INFO"
