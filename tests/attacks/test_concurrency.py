"""Concurrent requests on the test driver, from threads in this process.

The threads share one WSGI application, as under waitress. The libvirt
binding releases the GIL during calls, so the requests interleave.
Each test runs a bounded number of rounds and threads.
"""

import threading

from webtest import TestApp

from tests.api.conftest import unique_name
from tests.conftest import make_token
from tests.attacks.conftest import GUESTS, HOST

ROUNDS = 20
THREADS = 6


def client(wsgi_app):
    return TestApp(wsgi_app, extra_environ={
        "HTTP_X_SIMPLESTACK_HYPERVISOR_TOKEN": make_token()})


def run_threads(targets):
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)


def test_concurrent_tags_are_all_kept(wsgi_app, api, guest):
    # add_tag reads the tags from the domain XML, adds one and writes the
    # set back, so two concurrent adds can each overwrite the other.
    tags_path = "%s/%s/tags" % (GUESTS, guest["id"])
    answered = []
    for round_number in range(ROUNDS):
        names = ["r%d-t%d" % (round_number, index)
                 for index in range(THREADS)]

        def add(name):
            response = client(wsgi_app).post_json(
                tags_path, {"name": name}, status="*")
            answered.append((name, response.status_int))

        run_threads([lambda name=name: add(name) for name in names])

    stored_tags = set(api.get(tags_path).json)
    confirmed = {name for name, status in answered if status == 201}
    assert len(answered) == ROUNDS * THREADS
    assert sorted(confirmed - stored_tags) == []


def test_guest_list_survives_concurrent_delete(wsgi_app):
    # list_guests fetches every domain's XML after listing the domains, so
    # a guest deleted in between turns the whole list into a 404.
    statuses = []
    stop = threading.Event()

    def churn():
        app = client(wsgi_app)
        for _ in range(ROUNDS * 5):
            if stop.is_set():
                return
            record = app.post_json(GUESTS, {"name": unique_name()}).json
            app.delete("%s/%s" % (GUESTS, record["id"]))

    def list_guests():
        app = client(wsgi_app)
        for _ in range(ROUNDS * 5):
            statuses.append(app.get(GUESTS, status="*").status_int)
        stop.set()

    run_threads([churn, churn, list_guests, list_guests])

    assert statuses
    assert sorted(set(statuses)) == [200]


def test_storage_list_survives_concurrent_delete(wsgi_app):
    # list_storages reads every volume's size, so a volume deleted with its
    # guest in between turns the whole list into a 404.
    statuses = []
    stop = threading.Event()
    pool = HOST + "/storages/default-pool"

    def churn():
        app = client(wsgi_app)
        for _ in range(ROUNDS * 5):
            if stop.is_set():
                return
            record = app.post_json(GUESTS, {
                "name": unique_name(), "hdd": 1,
                "storage_id": "default-pool"}).json
            app.delete("%s/%s" % (GUESTS, record["id"]))

    def list_storages():
        app = client(wsgi_app)
        for _ in range(ROUNDS * 5):
            statuses.append(app.get(HOST + "/storages",
                                    status="*").status_int)
        stop.set()

    assert client(wsgi_app).get(pool).status_int == 200
    run_threads([churn, churn, list_storages, list_storages])

    assert statuses
    assert sorted(set(statuses)) == [200]
