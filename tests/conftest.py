"""Fixtures shared by every test folder."""

import base64

import pytest

from tests.server import Server

# Sent by every API test: a password with colons and non-ASCII characters.
# It must never appear in a response or a log line.
CANARY_PASSWORD = "canary:pässwörd:7c1f"


def make_token(username="root", password=CANARY_PASSWORD):
    return base64.b64encode(
        ("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


@pytest.fixture(scope="session")
def token():
    return make_token()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The service under pserve on a free loopback port, for one module.

    Its log must not contain the canary password when the module ends.
    """
    running = Server(str(tmp_path_factory.mktemp("server") / "pserve.log"))
    running.start()
    yield running
    running.stop()
    assert CANARY_PASSWORD not in running.read_log()
