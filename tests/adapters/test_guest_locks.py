"""Guest locks across service processes.

A child process stands for another gunicorn worker: it holds a lock for
HOLD_SECONDS while this process requests it.
"""

import multiprocessing
import threading
import time

from simplestack.adapters.guest_locks import guest_lock, name_lock

#: Seconds the child holds its lock.
HOLD_SECONDS = 1.0


def hold_in_child(key, ready, seconds=HOLD_SECONDS):
    """Start a process that holds guest_lock(*key) for ``seconds`` and sets
    ``ready`` once it holds it; return the process."""
    def hold():
        with guest_lock(*key):
            ready.set()
            time.sleep(seconds)

    process = multiprocessing.get_context("fork").Process(target=hold)
    process.start()
    assert ready.wait(10), "the child process did not take the lock"
    return process


def seconds_to_take(key):
    started = time.monotonic()
    with guest_lock(*key):
        return time.monotonic() - started


def test_lock_waits_for_other_process():
    key = ("xen", "127.0.0.1:443", "name", "sstest-locks-wait")
    child = hold_in_child(key, multiprocessing.get_context("fork").Event())
    try:
        waited = seconds_to_take(key)
    finally:
        child.join(10)

    assert waited > HOLD_SECONDS / 2


def test_key_compares_case_insensitively():
    child = hold_in_child(("XEN", "Host", "name", "SSTEST-Locks-Case"),
                          multiprocessing.get_context("fork").Event())
    try:
        waited = seconds_to_take(("xen", "host", "name", "sstest-locks-case"))
    finally:
        child.join(10)

    assert waited > HOLD_SECONDS / 2


def test_other_key_does_not_wait():
    child = hold_in_child(("sstest-locks-held",),
                          multiprocessing.get_context("fork").Event())
    try:
        waited = seconds_to_take(("sstest-locks-free",))
    finally:
        child.join(10)

    assert waited < HOLD_SECONDS / 2


def test_nested_lock_of_one_key_reenters():
    key = ("sstest-locks-nested",)
    with guest_lock(*key):
        with guest_lock(*key):
            inner = True
        # The outer hold still excludes other processes.
        child_ready = multiprocessing.get_context("fork").Event()
        blocked = multiprocessing.get_context("fork").Process(
            target=lambda: (guest_lock(*key).__enter__(), child_ready.set()))
        blocked.start()
        took_lock_early = child_ready.wait(HOLD_SECONDS)
    blocked.join(10)

    assert inner
    assert not took_lock_early
    assert child_ready.is_set()


def test_name_lock_without_name_is_no_lock():
    with name_lock("xen", "host", None):
        pass


def hold_one_then_take_other(held, wanted, results):
    """In one process, hold ``held`` for HOLD_SECONDS in one thread while
    another thread takes ``wanted`` after a pause; put what it got on
    ``results``."""
    outcome = []

    def take_later():
        time.sleep(HOLD_SECONDS / 4)
        try:
            with guest_lock(*wanted):
                outcome.append("taken")
        except OSError as error:
            outcome.append(repr(error))

    holder = threading.Thread(
        target=lambda: hold_for(held, HOLD_SECONDS))
    taker = threading.Thread(target=take_later)
    holder.start()
    taker.start()
    holder.join()
    taker.join()
    results.put(outcome)


def hold_for(key, seconds):
    with guest_lock(*key):
        time.sleep(seconds)


def test_crossed_waits_of_threads_are_no_deadlock():
    # Each process holds one lock in one thread and waits for the other's
    # in another. The holders wait for nothing, so both waits end. POSIX
    # record locks belong to the process, and the kernel failed one wait
    # with EDEADLK.
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    first, second = ("sstest-locks-cross-1",), ("sstest-locks-cross-2",)
    processes = [
        context.Process(target=hold_one_then_take_other,
                        args=(first, second, results)),
        context.Process(target=hold_one_then_take_other,
                        args=(second, first, results)),
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=10 * HOLD_SECONDS) for _ in processes]
    for process in processes:
        process.join(10)

    assert outcomes == [["taken"], ["taken"]]
