"""Unicode in names and path segments, on the test driver, Xen and vSphere.

Names reach every hypervisor inside XML (libvirt's domain XML, XAPI's
XML-RPC, vSphere's SOAP). XML 1.0 cannot carry the noncharacters U+FFFE
and U+FFFF, so every hypervisor failed and the service returned 502. Other
text must come back exactly as sent, not normalized (NFC and NFD stay
apart).
"""

from urllib.parse import quote

import pytest

from tests.attacks import round4
from tests.attacks.round4 import backends  # noqa: F401 (fixture)

NONCHARACTERS = ["\ufffe", "a\uffff"]

# Names that every backend must store and return unchanged: precomposed and
# decomposed accents, a right-to-left override, characters outside the
# Basic Multilingual Plane, Arabic, a zero-width joiner with a byte order
# mark, and a tag character.
ROUND_TRIP_NAMES = [
    "caf\u00e9", "cafe\u0301", "\u202egnp.exe", "\U0001F600\U0001D518",
    "\u0645\u0631\u062d\u0628\u0627", "\u200d\ufeffz", "\U000E0041tag",
]


def assert_invalid(response):
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "InvalidArguments"


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("text", NONCHARACTERS)
def test_noncharacter_in_name_is_400(backends, backend, text):
    client, base = backends.client(backend), backends.base(backend)
    name = "sstest-n4-" + text

    response = client.post(base + "/guests", {"name": name})

    assert_invalid(response)
    assert name not in backends.guest_names(backend)


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("text", NONCHARACTERS)
@pytest.mark.parametrize("collection", ["guests", "networks", "storages"])
def test_noncharacter_in_path_is_400(backends, backend, text, collection):
    client, base = backends.client(backend), backends.base(backend)

    response = client.get("%s/%s/%s" % (base, collection,
                                        quote(text, safe="")))

    assert_invalid(response)


@pytest.mark.parametrize("backend", round4.BACKENDS)
def test_noncharacter_tag_is_400(backends, backend):
    client, base = backends.client(backend), backends.base(backend)
    guest = client.post(base + "/guests", {"name": "sstest-n4-tags"}).json()
    tags = "%s/guests/%s/tags" % (base, guest["id"])
    try:
        created = client.post(tags, {"name": "x\ufffe"})
        removed = client.delete(tags + "/" + quote("x\ufffe", safe=""))

        assert_invalid(created)
        assert_invalid(removed)
        assert client.get(tags).json() == []
    finally:
        client.delete("%s/guests/%s" % (base, guest["id"]))


@pytest.mark.parametrize("backend", round4.BACKENDS)
@pytest.mark.parametrize("text", ROUND_TRIP_NAMES)
def test_name_round_trips_unchanged(backends, backend, text):
    client, base = backends.client(backend), backends.base(backend)
    name = "sstest-n4-" + text
    created = client.post(base + "/guests", {"name": name})
    assert created.status_code == 201, created.text
    guest_path = "%s/guests/%s" % (base, created.json()["id"])
    try:
        tag_path = guest_path + "/tags/" + quote(name, safe="")
        tagged = client.post(guest_path + "/tags", {"name": name})

        assert created.json()["name"] == name
        assert client.get(guest_path).json()["name"] == name
        assert backends.guest_names(backend).count(name) == 1
        assert tagged.status_code == 201, tagged.text
        assert tagged.json() == [name]
        assert client.get(tag_path).json() == {"name": name}
    finally:
        client.delete(guest_path)
