"""Markers that name no listed item: a guest deleted between two pages."""

from tests.api.test_lists import GUESTS, five_guests  # noqa: F401 (fixture)


def _ids(api, query=""):
    return [record["id"] for record in api.get(GUESTS + query).json]


def test_marker_of_deleted_guest(api, five_guests):  # noqa: F811
    ids = _ids(api)
    deleted = ids[2]
    api.delete("%s/%s" % (GUESTS, deleted))

    after = _ids(api, "?marker=" + deleted)

    assert after == ids[3:]


def test_marker_before_every_id(api, five_guests):  # noqa: F811
    ids = _ids(api)

    after = _ids(api, "?marker=0")

    assert after == ids


def test_marker_after_every_id(api, five_guests):  # noqa: F811
    after = _ids(api, "?marker=g")

    assert after == []
