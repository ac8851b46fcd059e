"""Each request's adapter connection is closed when the request ends."""

import pytest

from tests.api.adapters import RecordingAdapter
from tests.api.conftest import unique_name

HOST = "/tracked/default"


@pytest.fixture
def recorded():
    RecordingAdapter.instances.clear()
    yield RecordingAdapter.instances
    RecordingAdapter.instances.clear()


def assert_all_closed(instances, expected_count):
    assert len(instances) == expected_count
    for adapter in instances:
        assert adapter.opened
        assert adapter.closed


def test_successful_requests_close(api, recorded):
    api.get(HOST + "/guests")
    api.get(HOST)
    api.get(HOST + "/storages")
    assert_all_closed(recorded, 3)


def test_failing_requests_close(api, recorded):
    missing = "00000000-0000-0000-0000-000000000000"
    api.get(HOST + "/guests/" + missing, status=404)
    api.put_json(HOST + "/guests/" + missing + "/power",
                 {"state": "start"}, status=404)
    assert_all_closed(recorded, 2)


def test_state_conflict_closes(api, recorded):
    record = api.post_json(HOST + "/guests", {"name": unique_name()}).json
    path = HOST + "/guests/" + record["id"]
    api.put_json(path + "/power", {"state": "resume"}, status=409)
    api.delete(path)
    assert_all_closed(recorded, 3)


def test_invalid_request_opens_nothing(api, recorded):
    api.post_json(HOST + "/guests", {"cpus": "many"}, status=400)
    api.put_json(HOST + "/guests/x/power", {"state": "fly"}, status=400)
    assert recorded == []


def test_bad_token_opens_nothing(anonymous, recorded):
    anonymous.get(HOST + "/guests", status=401)
    assert recorded == []


def test_test_driver_state_survives_requests(api):
    # libvirt's test driver drops its state when its last connection
    # closes; the adapter keeps one process-wide connection so a guest
    # created by one request is there for the next.
    record = api.post_json(HOST + "/guests", {"name": unique_name()}).json
    try:
        assert api.get(HOST + "/guests/" + record["id"]).json["name"] \
            == record["name"]
    finally:
        api.delete(HOST + "/guests/" + record["id"])
