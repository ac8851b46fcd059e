"""Requests free their objects by reference counting.

A request whose objects form a reference cycle keeps them, the adapter and
its libvirt objects included, until the cyclic garbage collector runs, and
each collection costs the worker CPU time. Requests that fail with an error
still leave cycles through the error's traceback, so only successful ones
are checked here.
"""

import gc

import pytest

HOST = "/test/default"


@pytest.fixture
def saved_garbage():
    """Make gc.collect() keep what it finds in gc.garbage, for one test."""
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    yield gc.garbage
    gc.set_debug(0)
    gc.garbage.clear()


@pytest.mark.parametrize("path", [
    "/guests/{guest}",
    "/guests",
    "/guests?limit=1",
    "/guests/{guest}/disks",
    "/networks",
    "",
])
def test_request_leaves_no_cycles(api, guest, path, saved_garbage):
    url = HOST + path.format(guest=guest["id"])
    # The first request fills caches that live on.
    api.get(url, status=200)
    gc.collect()
    gc.garbage.clear()

    api.get(url, status=200)
    gc.collect()

    assert saved_garbage == [], sorted(
        {type(item).__name__ for item in saved_garbage})
