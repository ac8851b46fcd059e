"""Free-form object fields (network other_config, guest vcpu_settings).

The long generated-request run sent other_config values with control
characters: the Xen adapter passed them on, and XML-RPC cannot carry them,
so XAPI failed to parse the call and the service returned 502. They are
rejected up front now, on every backend.
"""

import pytest

from tests.attacks.conftest import GUESTS, HOST, assert_error


@pytest.mark.parametrize("text", ["\x05", "a\x1eb", "\x00", "\x0b", "\ufffe"])
@pytest.mark.parametrize("place", ["key", "value"])
def test_network_other_config_rejects_control_characters(api, text, place):
    other_config = {text: "x"} if place == "key" else {"x": text}
    response = api.post_json(HOST + "/networks", {
        "name": "sstest-objects", "other_config": other_config}, status="*")

    body = assert_error(response, 400, "InvalidArguments")
    assert body["details"][0]["name"] == "other_config"


def test_guest_vcpu_settings_rejects_control_characters(api, guest):
    response = api.put_json(GUESTS + "/" + guest["id"], {
        "vcpu_settings": {"weight": "25\x06"}}, status="*")

    body = assert_error(response, 400, "InvalidArguments")
    assert body["details"][0]["name"] == "vcpu_settings"


@pytest.mark.parametrize("text", ["tab\there", "line\nfeed", "carriage\rreturn", "ünïcödé"])
def test_network_other_config_keeps_xml_text(api, text):
    """Characters XML can carry pass validation (the test driver then
    rejects other_config itself with 501)."""
    response = api.post_json(HOST + "/networks", {
        "name": "sstest-objects", "other_config": {"x": text}}, status="*")

    assert_error(response, 501, "FeatureNotImplemented")
