"""Engines kept warm across the stages of one recipe (factory/engines/warm.py)."""

from click.testing import CliRunner

from factory.cli.main import main
from factory.engines.base import EngineConfig
from factory.engines.trivial import TrivialEngine
from factory.engines.warm import keep_warm, start_or_borrow


class CountingEngine(TrivialEngine):
    """The trivial engine, counting its starts and closes across the whole test process."""

    started: list["CountingEngine"] = []
    closed: list["CountingEngine"] = []

    def __init__(self, config: EngineConfig | None = None):
        super().__init__(config)
        CountingEngine.started.append(self)

    def close(self) -> None:
        CountingEngine.closed.append(self)
        print("counting engine closed", flush=True)  # a recipe test reads where in its output this falls


def _reset() -> None:
    CountingEngine.started.clear()
    CountingEngine.closed.clear()


def test_outside_a_recipe_every_stage_starts_and_closes_its_own_engine():
    _reset()
    first = start_or_borrow("k", CountingEngine)
    second = start_or_borrow("k", CountingEngine)
    assert first is not second and len(CountingEngine.started) == 2
    first.close()
    assert CountingEngine.closed == [first]


def test_inside_keep_warm_same_settings_share_one_engine_until_the_block_ends():
    _reset()
    with keep_warm():
        a = start_or_borrow("same", CountingEngine)
        a.close()  # a stage closing what it borrowed must not stop the engine
        b = start_or_borrow("same", CountingEngine)
        assert len(CountingEngine.started) == 1 and CountingEngine.closed == []
        assert b.generate is not None and b.name == "trivial"
    assert CountingEngine.closed == CountingEngine.started


def test_other_settings_replace_the_warm_engine_so_one_model_is_in_memory():
    _reset()
    with keep_warm() as warm:
        start_or_borrow("model-a", CountingEngine)
        start_or_borrow("model-b", CountingEngine)
        assert len(CountingEngine.started) == 2 and CountingEngine.closed == [CountingEngine.started[0]]
        warm.close_all()
        assert CountingEngine.closed == CountingEngine.started


def test_an_error_inside_the_block_still_closes_the_engine():
    _reset()
    try:
        with keep_warm():
            start_or_borrow("k", CountingEngine)
            raise KeyboardInterrupt
    except KeyboardInterrupt:
        pass
    assert CountingEngine.closed == CountingEngine.started and len(CountingEngine.started) == 1


def test_a_recipe_starts_one_engine_for_its_llm_stages_and_closes_it_before_the_rest(tmp_path, notes_dir, toy_gold_file,
                                                                                       monkeypatch):
    _reset()
    import factory.engines

    monkeypatch.setattr(factory.engines, "load_engine", lambda name, config: CountingEngine(config))
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'''
[run]
folder = "{tmp_path / 'run'}"

[[stage]]
command = "label"
notes = "{notes_dir}"
out = "{{run}}"

[[stage]]
command = "synthesize"
per_category = 2
out = "{{run}}"

[[stage]]
command = "check"
run = "{{run}}"

[[stage]]
command = "gold import"
path = "{toy_gold_file}"
out = "{{run}}/gold"
''', encoding="utf-8")
    result = CliRunner().invoke(main, ["run", str(recipe)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "stage 4/4: gold import" in result.output
    assert len(CountingEngine.started) == 1, "label, synthesize and check should share one engine start"
    assert CountingEngine.closed == CountingEngine.started
    assert result.output.index("counting engine closed") < result.output.index("stage 4/4: gold import")
    assert any((tmp_path / "run" / "silver").glob("*.parquet")) and any((tmp_path / "run" / "bronze").glob("*.parquet"))
    assert any((tmp_path / "run" / "bronze_check").glob("*.parquet"))
