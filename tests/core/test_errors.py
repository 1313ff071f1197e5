"""FactoryError is the one user-facing error (the CLI turns it into one `error:` line and exit code 2;
tests/cli/test_bad_input.py checks that side)."""

import pickle

import pytest

from factory.core.errors import FactoryError


def test_a_factory_error_carries_its_message_and_is_no_builtin_error():
    # Not an OSError or ValueError: code that handles those (a missing file, a bad number) never swallows it.
    assert issubclass(FactoryError, Exception) and not issubclass(FactoryError, (OSError, ValueError, LookupError))
    with pytest.raises(FactoryError, match="^gold not found: x$"):
        raise FactoryError("gold not found: x")


def test_it_survives_a_trip_between_processes():
    """Engine replicas and Ray actors send errors back pickled: the message must arrive whole."""
    error = pickle.loads(pickle.dumps(FactoryError("model folder not found: /m")))
    assert type(error) is FactoryError and str(error) == "model folder not found: /m"
