"""Fixtures shared by every test folder."""

import base64

import pytest

# Sent by every API test: a password with colons and non-ASCII characters.
# It must never appear in a response or a log line.
CANARY_PASSWORD = "canary:pässwörd:7c1f"


def make_token(username="root", password=CANARY_PASSWORD):
    return base64.b64encode(
        ("%s:%s" % (username, password)).encode("utf-8")).decode("ascii")


@pytest.fixture(scope="session")
def token():
    return make_token()
