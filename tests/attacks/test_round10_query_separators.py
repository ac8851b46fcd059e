"""Semicolons in query strings.

WebOb splits a query string at ``;`` as well as at ``&``. So
``?name=web;db`` on an import created a guest named ``web``, and
``?fields=id;name`` selected ``id`` alone, both with a success status.
Python's urllib.parse (since 3.9.2), the WHATWG URL standard and nginx's
``$arg_`` variables split at ``&`` only, so a proxy in front of the service
also read another query than the service did. Now ``;`` is part of a
value, as it is there.
"""

import os

import pytest

from tests.attacks.conftest import GUESTS, assert_error
from tests.attacks.round2_http import (  # noqa: F401 (pytest fixtures)
    guest_cleanup, http_client, qemu_connection, qemu_pool, requires_qemu)
from tests.attacks.test_round2_images import import_path
from tests.backends import unique_name


def test_semicolon_in_fields_is_one_field(api):
    response = api.get(GUESTS + "?fields=id;name", status="*")

    body = assert_error(response, 400, "InvalidArguments")
    assert "id;name" in body["message"]


def test_semicolon_does_not_repeat_limit(api):
    response = api.get(GUESTS + "?limit=1;limit=2", status="*")

    body = assert_error(response, 400, "InvalidArguments")
    assert "not a whole number" in body["message"]


def test_semicolon_marker_is_one_value(api, guest):
    # A second guest of its own, so that the list has two guests whatever
    # the other tests left on the shared test driver host.
    other = api.post_json(GUESTS, {"name": unique_name("r10-marker"),
                                   "cpus": 1, "memory": 128}).json
    try:
        ids = [record["id"] for record in api.get(GUESTS + "?fields=id").json]
        # "<id>;" sorts after "<id>" and before the next id.
        page = api.get(GUESTS + "?fields=id&marker=%s;%s" % (ids[0],
                                                             ids[-1]))
    finally:
        api.delete(GUESTS + "/" + other["id"], status="*")

    assert len(ids) >= 2
    assert [record["id"] for record in page.json] == ids[1:]


def test_percent_encoded_ampersand_stays_in_value(api):
    response = api.get(GUESTS + "?fields=id%26limit%3D1", status="*")

    body = assert_error(response, 400, "InvalidArguments")
    assert "id&limit=1" in body["message"]


@requires_qemu
def test_semicolon_in_import_name_is_kept(
        http_client, qemu_pool, guest_cleanup):  # noqa: F811
    name = unique_name("r10-a;b")
    status, guest = http_client.upload(import_path(qemu_pool, name),
                                       os.urandom(4096))

    assert status == 201, guest
    guest_cleanup.append(guest["id"])
    assert guest["name"] == name


@pytest.mark.parametrize("query", ["name=x&name=y", "name=x&name="])
@requires_qemu
def test_repeated_import_name_still_400(http_client, qemu_pool,  # noqa: F811
                                        query):
    path = "/storages/%s/guests?%s" % (qemu_pool.UUIDString(), query)

    status, body = http_client.upload(path, os.urandom(4096))

    assert status == 400, body
    assert body["error"] == "InvalidArguments"
