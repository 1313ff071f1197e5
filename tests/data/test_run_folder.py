"""The run folder as a context manager: its lock is released on leaving the with-block, by error too."""

from __future__ import annotations

import pytest

from factory.core.errors import FactoryError
from factory.data.run_folder import Run


def test_with_run_open_holds_the_lock_and_releases_it_on_exit(tmp_path):
    with Run.open(tmp_path / "run") as run:
        with pytest.raises(FactoryError, match="in use by another factory process"):
            Run.open(tmp_path / "run")
    with pytest.raises(ZeroDivisionError):
        with Run.open(tmp_path / "run"):
            1 / 0
    with Run.open(tmp_path / "run") as again:  # released after an error as well
        assert again.out == run.out
    run.close()  # closing twice is harmless
