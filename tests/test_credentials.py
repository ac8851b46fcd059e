"""Decoding of the hypervisor token."""

import base64

import pytest

from simplestack import errors
from simplestack.credentials import parse_token


def encode(text):
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


@pytest.mark.parametrize("text, username, password", [
    ("root:secret", "root", "secret"),
    ("root:a:b:c", "root", "a:b:c"),
    ("rööt:pässwörd", "rööt", "pässwörd"),
    ("root:", "root", ""),
    (":secret", "", "secret"),
])
def test_valid_tokens(text, username, password):
    credentials = parse_token(encode(text))
    assert credentials.username == username
    assert credentials.password == password


def test_surrounding_spaces_are_ignored():
    assert parse_token("  %s " % encode("u:p")).password == "p"


def test_repr_hides_both_parts():
    credentials = parse_token(encode("admin:hunter2"))
    assert "hunter2" not in repr(credentials)
    assert "admin" not in repr(credentials)
    assert "hunter2" not in str(credentials)


@pytest.mark.parametrize("value", [
    None, "", "   ", "%%%%", "dXNlcjpw\nYXNz", "dXNlcjpwYXNz\r\n",
    encode("no colon"), base64.b64encode(b"u:\xc3\x28").decode(),
    "dXNlcjpwYXNzd29yZA", "é",
    # "=" after a complete group, and unused bits set in the last group.
    encode("user:pass") + "==", encode("user:pass") + "=",
    "dXNlcjpwYXNzd29yZB==",
])
def test_invalid_tokens_raise_unauthorized(value):
    with pytest.raises(errors.Unauthorized) as excinfo:
        parse_token(value)
    if value and value.strip():
        assert value.strip() not in excinfo.value.message
