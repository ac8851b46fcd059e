"""The service under a real WSGI server, driven over HTTP on loopback."""

import http.client
import json

from tests.conftest import CANARY_PASSWORD, make_token


def request(server, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", server.port,
                                            timeout=30)
    all_headers = {"x-simplestack-hypervisor-token": make_token()}
    all_headers.update(headers or {})
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
        all_headers.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=body, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response, data


def test_location_stays_root_relative(server):
    # Host and proxy headers must not turn Location into an absolute URL.
    response, data = request(
        server, "POST", "/test/default/guests",
        {"name": "sstest-server-location"},
        {"Host": "attacker.example", "X-Forwarded-Host": "proxy.example",
         "X-Forwarded-Proto": "https"})
    record = json.loads(data)
    try:
        assert response.status == 201
        assert response.getheader("Location") == \
            "/test/default/guests/" + record["id"]
    finally:
        request(server, "DELETE", "/test/default/guests/" + record["id"])


def test_errors_are_json_over_http(server):
    response, data = request(server, "GET", "/nope/x/guests")
    assert response.status == 404
    assert response.getheader("Content-Type").startswith("application/json")
    assert json.loads(data)["error"] == "EntityNotFound"


def test_log_has_summary_and_no_password(server):
    request(server, "GET", "/test/default/guests",
            headers={"X-Request-ID": "server-log-check"})
    log = server.read_log()
    assert "request_id=server-log-check" in log
    assert "status=200" in log
    assert CANARY_PASSWORD not in log
    assert make_token() not in log
