"""Progress bars report a rate in the caller's unit; the summary table has one column per stage."""

from types import SimpleNamespace

from rich.console import Console

from factory.core.progress import RateColumn, console, progress_bar, summary_table


def _render(renderable, width: int = 200) -> str:
    out = Console(width=width, record=True, color_system=None)
    out.print(renderable)
    return out.export_text()


def test_the_rate_column_shows_the_speed_in_the_unit_or_a_dash_before_there_is_one():
    column = RateColumn("chars")
    assert column.render(SimpleNamespace(finished_speed=None, speed=12.345)).plain == "12.35 chars/s"
    assert column.render(SimpleNamespace(finished_speed=3.0, speed=12.0)).plain == "3.00 chars/s"  # final rate wins
    assert column.render(SimpleNamespace(finished_speed=None, speed=None)).plain == "-- chars/s"


def test_progress_bars_write_to_stderr_with_the_rate_in_their_unit():
    bar = progress_bar("sentences")
    assert bar.console is console and console.stderr
    assert [c.unit for c in bar.columns if isinstance(c, RateColumn)] == ["sentences"]


def test_the_summary_table_has_a_column_per_stage_and_a_row_per_measure():
    table = summary_table("run", [{"stage": "silver", "rows": 12, "rows/s": 1.23456},
                                  {"stage": "bronze", "rows": 3, "rows/s": 0.5}])
    assert [c.header for c in table.columns] == ["", "silver", "bronze"]
    text = _render(table)
    rows = {line.split("│")[1].strip(): [cell.strip() for cell in line.split("│")[2:-1]]
            for line in text.splitlines() if line.count("│") == 4 and "silver" not in line}
    assert rows == {"rows": ["12", "3"], "rows/s": ["1.23", "0.50"]}  # floats to two places


def test_an_empty_summary_is_an_empty_table():
    table = summary_table("nothing ran", [])
    assert [c.header for c in table.columns] == [""] and table.row_count == 0
