"""Device choice of the transformers + Outlines backend (the backend measured on a lent GPU)."""

from types import SimpleNamespace

import pytest

from factory.engines.transformers_outlines import pick_device
from factory.core.errors import FactoryError


def fake_torch(gpus: int):
    cuda = SimpleNamespace(is_available=lambda: gpus > 0, device_count=lambda: gpus)
    return SimpleNamespace(cuda=cuda, __version__="test")


@pytest.mark.parametrize(("gpus", "requested", "expected"), [
    (0, "auto", "cpu"),
    (2, "auto", "cuda:0"),
    (2, "cpu", "cpu"),
    (2, "cuda", "cuda:0"),
    (2, "cuda:1", "cuda:1"),
])
def test_device_follows_what_is_visible_and_asked(gpus, requested, expected):
    assert pick_device(fake_torch(gpus), requested) == expected


@pytest.mark.parametrize(("gpus", "requested", "message"), [
    (0, "cuda", "sees no CUDA GPU"),
    (1, "cuda:1", "only 1 CUDA GPU"),
    (1, "tpu", "unknown device 'tpu'"),
    (1, "cuda:x", "unknown device 'cuda:x'"),
])
def test_impossible_device_is_a_clear_error(gpus, requested, message):
    with pytest.raises(FactoryError, match=message):
        pick_device(fake_torch(gpus), requested)
