"""Conversion of numeric setting values, shared by the settings modules.

Each function takes the raw INI text and the full setting name, which the
ValueError message names, as start-up errors must.
"""


def positive_int(raw, name):
    """Return ``raw`` as an integer above zero."""
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value <= 0:
        raise ValueError(
            "setting %s must be a positive integer, got %r" % (name, raw))
    return value


def positive_seconds(raw, name):
    """Return ``raw`` as a finite number of seconds above zero."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0
    if not 0 < value < float("inf"):
        raise ValueError(
            "setting %s must be a positive number of seconds, got %r"
            % (name, raw))
    return value
