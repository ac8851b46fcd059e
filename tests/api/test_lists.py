"""Paging and field selection on lists."""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.conftest import unique_name

GUESTS = "/test/default/guests"


@pytest.fixture
def five_guests(api):
    created = [api.post_json(GUESTS, {"name": unique_name()}).json
               for _ in range(5)]
    yield created
    for record in created:
        api.delete("%s/%s" % (GUESTS, record["id"]), status="*")


def next_link(response):
    link = response.headers.get("Link")
    if link is None:
        return None
    target, rel = link.split(";")
    assert rel.strip() == 'rel="next"'
    return target.strip()[1:-1]


def test_pages_cover_the_list_once(api, five_guests):
    everything = api.get(GUESTS).json
    seen = []
    url = GUESTS + "?limit=2"
    while url is not None:
        response = api.get(url)
        page = response.json
        assert len(page) <= 2
        seen.extend(page)
        url = next_link(response)
        if url is not None:
            assert url.startswith(GUESTS + "?")
    assert seen == everything


def test_no_limit_means_every_item(api, five_guests):
    response = api.get(GUESTS)
    assert "Link" not in response.headers
    ids = {record["id"] for record in response.json}
    assert {record["id"] for record in five_guests} <= ids


def test_marker_skips_through_that_id(api, five_guests):
    ids = [record["id"] for record in api.get(GUESTS).json]
    after = api.get(GUESTS + "?marker=" + ids[1]).json
    assert [record["id"] for record in after] == ids[2:]


def test_fields_always_include_id(api, five_guests):
    records = api.get(GUESTS + "?fields=name,state").json
    assert records
    for record in records:
        assert set(record) == {"id", "name", "state"}


def test_next_link_keeps_fields(api, five_guests):
    response = api.get(GUESTS + "?limit=1&fields=name")
    query = parse_qs(urlsplit(next_link(response)).query)
    assert query["fields"] == ["name"]
    assert query["limit"] == ["1"]
    assert query["marker"] == [response.json[0]["id"]]


@pytest.mark.parametrize("limit", ["100001", "1" * 40, "0" * 30 + "100001"])
def test_limit_over_maximum_names_maximum(api, limit):
    response = api.get(GUESTS + "?limit=" + limit, status="*")
    assert response.status_int == 400
    description = response.json["details"][0]["description"]
    assert "greater than maximum value 100000" in description
    assert len(description) < 100


def test_limit_with_leading_zeros_is_read(api, five_guests):
    response = api.get(GUESTS + "?limit=" + "0" * 30 + "2")
    assert len(response.json) == 2


@pytest.mark.parametrize("query", [
    "limit=0", "limit=-1", "limit=abc", "fields=nonexistent",
    "fields=name,,state", "limit=1&limit=2", "limit=", "fields=",
    "marker=", "limit=1_0", "limit=%D9%A1", "limit=+1",
])
def test_bad_list_parameters_are_400(api, query):
    response = api.get(GUESTS + "?" + query, status="*")
    assert response.status_int == 400
    assert response.json["error"] == "InvalidArguments"
    assert response.json["details"][0]["location"] == "querystring"
