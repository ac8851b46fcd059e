"""Image streams: the per-process limit, headers, and closing."""

from webob import Request

from simplestack import main
from tests.api.conftest import app_settings, unique_name
from tests.conftest import make_token

HOST = "/streaming/default"


def start_export(app, guest_id):
    """Call the WSGI app without reading the body; return (status, iter)."""
    request = Request.blank("%s/guests/%s/export" % (HOST, guest_id),
                            headers={"x-simplestack-hypervisor-token":
                                     make_token()})
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = dict(headers)

    body = app(request.environ, start_response)
    return captured["status"], captured["headers"], body


def close_body(body):
    """Close a WSGI body as a server does; error bodies may be lists."""
    close = getattr(body, "close", None)
    if close is not None:
        close()


def test_streams_over_limit_get_503(api):
    app = main({}, **app_settings(
        **{"simplestack.max_concurrent_streams": "1"}))
    guest = api.post_json(HOST + "/guests", {"name": unique_name()}).json
    try:
        status, _headers, first = start_export(app, guest["id"])
        assert status.startswith("200")

        status, headers, body = start_export(app, guest["id"])
        assert status.startswith("503")
        assert headers["Retry-After"] == "30"
        assert b"ServiceUnavailable" in b"".join(body)

        # Other requests are still served while the stream is open.
        request = Request.blank(HOST + "/guests/" + guest["id"], headers={
            "x-simplestack-hypervisor-token": make_token()})
        assert request.get_response(app).status_int == 200

        first.close()
        status, _headers, again = start_export(app, guest["id"])
        assert status.startswith("200")
        assert b"".join(again) == b"x" * 4096
        again.close()
    finally:
        api.delete(HOST + "/guests/" + guest["id"])


def test_failed_export_frees_its_slot(api):
    app = main({}, **app_settings(
        **{"simplestack.max_concurrent_streams": "1"}))
    missing = "00000000-0000-0000-0000-000000000000"
    for _ in range(3):
        status, _headers, body = start_export(app, missing)
        assert status.startswith("404")
        close_body(body)
    guest = api.post_json(HOST + "/guests", {"name": unique_name()}).json
    try:
        status, _headers, body = start_export(app, guest["id"])
        assert status.startswith("200")
        body.close()
    finally:
        api.delete(HOST + "/guests/" + guest["id"])


def test_export_filename_survives_any_name(api):
    name = unique_name() + "-\u20ac-\u00fc"
    guest = api.post_json(HOST + "/guests", {"name": name}).json
    try:
        response = api.get("%s/guests/%s/export" % (HOST, guest["id"]))
        header = response.headers["Content-Disposition"]
        header.encode("latin-1")
        assert 'filename="%s-_-_.img"' % name[:-4] in header
        assert "filename*=UTF-8''" in header
        assert "%E2%82%AC" in header
        assert response.body == b"x" * 4096
    finally:
        api.delete(HOST + "/guests/" + guest["id"])
