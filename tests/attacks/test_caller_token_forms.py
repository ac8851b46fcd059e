"""Malformed caller tokens sent over real HTTP to pserve with caller tokens
turned on.

Requests go out on raw sockets, so values that HTTP client libraries
reject (bytes that are not ASCII, folded lines) reach the server as
written. Every wrong token gets a 401 JSON error before the hypervisor
token is looked at, never a 500, and the right token still works after
them.
"""

import hashlib
import json

import pytest

from tests.attacks import stack
from tests.attacks.test_token_forms import send_raw
from tests.conftest import CANARY_PASSWORD

CALLER_TOKEN = b"sstest-caller-token-0e4b"
CALLER_HEADER = b"x-simplestack-token"
PATH = "/test/default/guests"

WRONG_TOKENS = {
    "missing": None,
    "empty": b"",
    "spaces only": b"   ",
    "one byte more": CALLER_TOKEN + b"x",
    "upper case": CALLER_TOKEN.upper(),
    "the digest itself": b"sha256:" + hashlib.sha256(CALLER_TOKEN)
    .hexdigest().encode("ascii"),
    "folded line": CALLER_TOKEN[:6] + b"\r\n " + CALLER_TOKEN[6:],
    "bytes not ASCII": CALLER_TOKEN + b"\xff\xfe",
    "not UTF-8": b"\xc3\x28" + CALLER_TOKEN,
    "canary password": CANARY_PASSWORD.encode("utf-8"),
    "huge": b"t" * 200000,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("caller-tokens"))
    digest = "sha256:" + hashlib.sha256(CALLER_TOKEN).hexdigest()
    running = stack.start_server(folder, {
        "simplestack.caller_token_digests": digest})
    yield running
    running.stop()
    assert not stack.leaks_canary(running.read_log())


def send(server, caller_token, hypervisor_token=None):
    """GET PATH with both tokens written as given; None leaves the caller
    token out."""
    if hypervisor_token is None:
        hypervisor_token = stack.canary_token("root").encode("ascii")
    token_lines = hypervisor_token
    if caller_token is not None:
        # send_raw writes its token as the last header line, so the caller
        # token rides along as one more line after it.
        token_lines += b"\r\n" + CALLER_HEADER + b": " + caller_token
    return send_raw(server.port, PATH, token_lines)


def test_right_token_accepted(server):
    status, content_type, body = send(server, CALLER_TOKEN)

    assert status == 200, body[:300]
    assert isinstance(json.loads(body), list)


@pytest.mark.parametrize("form", sorted(WRONG_TOKENS))
def test_wrong_token_rejected(server, form):
    status, content_type, body = send(server, WRONG_TOKENS[form])

    assert status == 401, body[:300]
    assert content_type.startswith("application/json")
    document = json.loads(body)
    assert document["error"] == "Unauthorized"
    assert "x-simplestack-token" in document["message"]
    assert not stack.leaks_canary(body)

    # The next request with the right token is served.
    assert send(server, CALLER_TOKEN)[0] == 200


def test_checked_before_hypervisor_token(server):
    # A broken hypervisor token would be a 401 of its own; the caller
    # token's 401 comes first and names the caller token.
    status, _, body = send(server, b"wrong", hypervisor_token=b"%%%")

    assert status == 401
    assert "x-simplestack-token" in json.loads(body)["message"]
    assert "hypervisor" not in json.loads(body)["message"]
