"""HEAD on an export runs the checks of GET and starts no transfer.

HEAD returned 200 on the libvirt test driver, whose GET returns 501
because the driver cannot download volumes.
"""

from tests.api.test_errors import assert_error

GUESTS = "/test/default/guests"
MISSING = "00000000-0000-0000-0000-00000000dead"


def test_head_export_test_driver_is_501(api, guest):
    path = "%s/%s/export" % (GUESTS, guest["id"])

    headed = api.head(path, status="*")
    got = api.get(path, status="*")

    assert headed.status_int == 501
    assert headed.body == b""
    assert_error(got, 501, "FeatureNotImplemented")


def test_head_export_disk_guest_is_501(api):
    created = api.post_json(GUESTS, {"name": "sstest-head-export",
                                     "hdd": 1}).json
    try:
        path = "%s/%s/export" % (GUESTS, created["id"])

        assert api.head(path, status="*").status_int == 501
        assert api.get(path, status="*").status_int == 501
    finally:
        api.delete("%s/%s" % (GUESTS, created["id"]))


def test_head_export_missing_guest_is_404(api):
    path = "/streaming/default/guests/%s/export" % MISSING

    assert api.head(path, status="*").status_int == 404
    assert api.get(path, status="*").status_int == 404


def test_head_export_missing_guest_matches_get(api):
    # The test driver's lack of volume downloads is checked first.
    path = "%s/%s/export" % (GUESTS, MISSING)

    assert api.head(path, status="*").status_int == 501
    assert api.get(path, status="*").status_int == 501


def test_head_export_working_adapter_is_200(api):
    """The streaming type's adapter exports on the test driver."""
    guests = "/streaming/default/guests"
    created = api.post_json(guests, {"name": "sstest-head-stream"}).json
    try:
        response = api.head("%s/%s/export" % (guests, created["id"]))

        assert response.status_int == 200
        assert response.body == b""
        assert "Content-Disposition" not in response.headers
    finally:
        api.delete("%s/%s" % (guests, created["id"]))
