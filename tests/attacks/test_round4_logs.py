"""Long caller text in the log lines of pserve.

waitress passes on request lines up to its 256 KiB header limit. The
summary line and the warning of a failed request copied the whole path,
so every such request wrote a log line of that length.
"""

import pytest

from tests.attacks import stack

#: The maximum length of a log line that the tests accept: the kept path
#: plus the other fields.
MAX_LINE = 4096 + 600

LONG_SEGMENT = "a" * 100000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = stack.start_server(str(tmp_path_factory.mktemp("round4-logs")))
    yield running
    running.stop()


def send(server, path, request_id):
    client = stack.Client(server.url, stack.canary_token("root"))
    try:
        return client.session.get(
            server.url + path, headers={"X-Request-ID": request_id},
            timeout=stack.CLIENT_TIMEOUT)
    finally:
        client.close()


def log_lines(server, marker):
    return [line for line in server.read_log().splitlines() if marker in line]


def test_long_path_summary_is_cut(server):
    response = send(server, "/test/default/guests/" + LONG_SEGMENT,
                    "n4-long-summary")

    lines = log_lines(server, "request_id=n4-long-summary")
    assert response.status_code == 404
    assert len(lines) == 1
    assert len(lines[0]) < MAX_LINE
    assert "path='/test/default/guests/aaaa" in lines[0]


def test_long_path_failure_warning_is_cut(server):
    # Port 1 on loopback refuses connections, so the request fails with 502
    # after its path reached the adapter.
    response = send(server, "/xen/127.0.0.1:1/guests/" + LONG_SEGMENT,
                    "n4-long-failure")

    lines = log_lines(server, "/xen/127.0.0.1:1/guests/aaaa")
    assert response.status_code == 502
    assert len(lines) == 2
    assert all(len(line) < MAX_LINE for line in lines)
