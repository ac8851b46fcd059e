"""ReadAhead: an export's chunks read in a thread ahead of the client."""

import threading
import time

import pytest

from simplestack import errors, logs
from simplestack.streams import READ_AHEAD_CHUNKS, ReadAhead


class Source:
    """A generator of numbered chunks that records what it did."""

    def __init__(self, count, fail_after=None):
        self.count = count
        self.fail_after = fail_after
        self.produced = 0
        self.closed_in = None
        self.request_ids = set()

    def chunks(self):
        try:
            for number in range(self.count):
                if number == self.fail_after:
                    raise errors.HypervisorUnreachable("the hypervisor went away")
                self.request_ids.add(logs.current_request_id())
                self.produced += 1
                yield b"%d" % number
        finally:
            self.closed_in = threading.current_thread().name


def wait_until(condition, seconds=5.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def wait_until_still(read, seconds=0.3):
    """Wait until ``read()`` stops changing for ``seconds``; return it."""
    value = read()
    while True:
        time.sleep(seconds)
        if read() == value:
            return value
        value = read()


def test_chunks_arrive_in_order_then_end():
    source = Source(50)
    chunks = ReadAhead(source.chunks(), request_id="r-1")
    assert list(chunks) == [b"%d" % number for number in range(50)]
    # Iterating after the end keeps ending.
    assert next(chunks, None) is None
    chunks.close()
    assert source.closed_in == "simplestack-read-ahead"
    assert source.request_ids == {"r-1"}


def test_reads_at_most_its_depth_ahead():
    source = Source(1000)
    chunks = ReadAhead(source.chunks())
    assert next(chunks) == b"0"
    produced = wait_until_still(lambda: source.produced)
    # The queue's chunks, plus the one its thread waits to put.
    assert produced == 1 + READ_AHEAD_CHUNKS + 1
    for number in range(1, 6):
        assert next(chunks) == b"%d" % number
    assert wait_until_still(lambda: source.produced) == \
        produced + 5
    chunks.close()
    assert source.closed_in == "simplestack-read-ahead"
    assert source.produced < 20


def test_error_comes_after_the_chunks_read_before_it():
    source = Source(10, fail_after=3)
    chunks = ReadAhead(source.chunks())
    assert [next(chunks) for _ in range(3)] == [b"0", b"1", b"2"]
    with pytest.raises(errors.HypervisorUnreachable, match="went away"):
        next(chunks)
    # The failure ends the iteration.
    assert next(chunks, None) is None
    chunks.close()
    assert source.closed_in == "simplestack-read-ahead"


def test_close_before_the_first_read_stops_the_thread():
    source = Source(1000)
    chunks = ReadAhead(source.chunks())
    chunks.close()
    assert source.closed_in == "simplestack-read-ahead"
    assert not any(thread.name == "simplestack-read-ahead"
                   and thread.is_alive()
                   for thread in threading.enumerate())
    assert next(chunks, None) is None


def test_close_waits_for_a_read_in_progress():
    release = threading.Event()
    entered = threading.Event()
    left = []

    def slow_chunks():
        try:
            yield b"first"
            entered.set()
            # A hypervisor that takes a while to send the next chunk.
            release.wait(5)
            yield b"second"
        finally:
            left.append(threading.current_thread().name)

    chunks = ReadAhead(slow_chunks())
    assert next(chunks) == b"first"
    assert entered.wait(5)
    threading.Timer(0.2, release.set).start()
    started = time.monotonic()
    chunks.close()
    # close returned only once the thread had left the iterator.
    assert left == ["simplestack-read-ahead"]
    assert time.monotonic() - started >= 0.15
