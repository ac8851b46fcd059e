"""List paging on the test driver, Xen and vSphere.

Paths accept guest UUIDs in any case and MACs in any case or with dashes.
A marker in such a spelling sorted before its own item (ids are listed in
lower case), so the next page began with the item the caller had already
seen.
"""

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.api.test_lists import next_link
from tests.attacks import round4
from tests.attacks.round4 import backends  # noqa: F401 (fixture)


def list_ids(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.text
    return [record["id"] for record in response.json()]


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("collection", ["guests", "networks", "storages"])
def test_upper_case_marker_skips_its_item(backends, backend, collection):
    client, base = backends.client(backend), backends.base(backend)
    path = "%s/%s?fields=id" % (base, collection)
    ids = list_ids(client, path)

    after = list_ids(client, path + "&marker=" + ids[0].upper())

    assert after == ids[1:]


@pytest.mark.parametrize("backend", ["xen", "vmware"])
@pytest.mark.parametrize("spelling", ["upper", "dashes"])
def test_mac_marker_skips_its_item(backends, backend, spelling):
    client, base = backends.client(backend), backends.base(backend)
    guests = list_ids(client, base + "/guests?fields=id")
    path = "%s/guests/%s/network_interfaces" % (base, guests[0])
    macs = list_ids(client, path)
    assert macs, "the simulator's first guest has no NIC"
    marker = macs[0].upper() if spelling == "upper" \
        else macs[0].replace(":", "-")

    after = list_ids(client, path + "?marker=" + marker)

    assert after == macs[1:]


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_id_pages_cover_list_once(backends, backend):
    client, base = backends.client(backend), backends.base(backend)
    everything = list_ids(client, base + "/guests?fields=id")
    seen = []
    path = base + "/guests?fields=id&limit=1"
    while path is not None:
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert len(response.json()) <= 1
        seen.extend(record["id"] for record in response.json())
        path = next_link(response)
        if path is not None:
            assert parse_qs(urlsplit(path).query)["fields"] == ["id"]

    assert seen == everything
