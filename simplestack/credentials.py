"""Decoding of the hypervisor credentials a caller sends with each request.

The header ``x-simplestack-hypervisor-token`` carries
``base64("user:password")``. The accepted form is strict, so that a
malformed token fails loudly instead of logging in as someone else:

- standard base64 alphabet (``+`` and ``/``), with its ``=`` padding and
  nothing after it: exactly what ``base64.b64encode`` produces;
- surrounding spaces are ignored, other white space (line breaks) is not;
- the decoded bytes are UTF-8;
- the first colon separates the user name from the password, so a
  password may contain colons.

Every failure raises :class:`simplestack.errors.Unauthorized` with a
message that names the problem and never echoes the token.
"""

import base64
import binascii

from simplestack import errors
from simplestack.adapters.base import Credentials

HEADER = "x-simplestack-hypervisor-token"


def parse_token(value):
    """Return the :class:`Credentials` encoded in a header value."""
    if value is None or not value.strip(" "):
        raise errors.Unauthorized(
            "missing header %s: send base64('user:password')" % HEADER)

    token = value.strip(" ")
    try:
        decoded = base64.b64decode(token.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        decoded = None
    # The decoder ignores "=" after complete groups and unused low bits of
    # the last group, so only the canonical encoding of the bytes passes.
    if decoded is None or base64.b64encode(decoded).decode("ascii") != token:
        raise errors.Unauthorized(
            "invalid header %s: not padded standard base64" % HEADER)

    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.Unauthorized(
            "invalid header %s: the decoded credentials are not UTF-8"
            % HEADER) from None

    username, colon, password = text.partition(":")
    if not colon:
        raise errors.Unauthorized(
            "invalid header %s: the decoded credentials have no colon "
            "between user name and password" % HEADER)
    return Credentials(username, password)


def redact(text, credentials):
    """Return ``text`` with the password of ``credentials`` replaced by
    ``<hidden>``: hypervisors and SDKs may quote it in their errors."""
    password = credentials.password if credentials else ""
    if not password or password not in text:
        return text
    return text.replace(password, "<hidden>")
