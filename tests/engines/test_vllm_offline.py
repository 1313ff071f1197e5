"""The vLLM backend's stop on an interrupt (factory/engines/vllm_offline.py), without starting vLLM: what it asks
of vLLM's engine-core client. How long a real stop takes is bin/bench's `vllm sigterm stop`; what it leaves
behind is tests/core/test_engine_processes.py's."""

from types import SimpleNamespace

from factory.engines.vllm_offline import STOP_GRACE_S, VLLMEngine


class Client:
    def __init__(self, takes_timeout: bool = True):
        self.calls: list[dict] = []
        self.takes_timeout = takes_timeout

    def shutdown(self, **kwargs):
        if kwargs and not self.takes_timeout:
            raise TypeError("shutdown() got an unexpected keyword argument 'timeout'")
        self.calls.append(kwargs)


def _engine(client) -> VLLMEngine:
    engine = object.__new__(VLLMEngine)  # no model: only the stop path is exercised
    engine._llm = SimpleNamespace(llm_engine=SimpleNamespace(engine_core=client, shutdown=client.shutdown))
    return engine


def test_stop_now_gives_the_engine_core_a_short_grace_not_vllms_five_seconds():
    client = Client()
    engine = _engine(client)
    engine.stop_now()
    assert client.calls == [{"timeout": STOP_GRACE_S}] and STOP_GRACE_S <= 1
    assert engine._llm is None
    engine.stop_now()  # safe twice: nothing left to stop
    engine.close()
    assert client.calls == [{"timeout": STOP_GRACE_S}]


def test_stop_now_on_a_client_without_a_timeout_still_shuts_down_once():
    client = Client(takes_timeout=False)
    engine = _engine(client)
    engine.stop_now()
    assert client.calls == [{}] and engine._llm is None


def test_close_is_the_graceful_shutdown():
    client = Client()
    engine = _engine(client)
    engine.close()
    assert client.calls == [{}] and engine._llm is None
