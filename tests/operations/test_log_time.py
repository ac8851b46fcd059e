"""simplestack.logs.utc_time_text, the ``time`` field of JSON log lines,
against the datetime call that it replaces."""

import datetime
import random

import pytest

from simplestack.logs import utc_time_text

# Values whose microseconds round across a millisecond, a second, a day or
# the epoch, and halves that round to even.
EDGE_TIMESTAMPS = [
    0.0, 1e-7, 0.0005, 0.0009995, 0.9999994, 0.9999995, 0.9999996,
    1764906028.0, 1764906028.0004995, 1764906028.0005, 1764906028.999,
    1764906028.9995, 1764906028.9999995, 1764979199.9999996,
    -0.5, -1.0000004, -86400.25,
]


def datetime_text(timestamp):
    return datetime.datetime.fromtimestamp(
        timestamp, datetime.timezone.utc).isoformat(timespec="milliseconds")


@pytest.mark.parametrize("timestamp", EDGE_TIMESTAMPS)
def test_edge_timestamps_match_datetime(timestamp):
    assert utc_time_text(timestamp) == datetime_text(timestamp)


def test_random_timestamps_match_datetime():
    generator = random.Random(20261205)
    timestamps = [generator.uniform(0, 4e9) for _ in range(20000)]
    # Runs of close values reuse the cached second.
    start = 1764906028
    timestamps += [start + step / 1e6 for step in range(0, 3000000, 97)]

    mismatches = [timestamp for timestamp in timestamps
                  if utc_time_text(timestamp) != datetime_text(timestamp)]

    assert mismatches == []
