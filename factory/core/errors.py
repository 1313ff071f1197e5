"""Errors the command line reports as one line and a non-zero exit, never as a traceback."""


class FactoryError(Exception):
    """A user-facing problem: bad input, missing file, invalid configuration."""
